"""The procedural benchmark: exact answers, well-formed drawings, determinism."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from evovlm import parse, synth

SVG_NS = "{http://www.w3.org/2000/svg}"
N_PER_KIND = 40


@pytest.fixture(scope="module")
def items() -> list[synth.SynthItem]:
    return synth.generate_items(N_PER_KIND * len(synth.KINDS), seed=1234)


# ---------------------------------------------------------------------------------------------
# Independent answer key: recomputed from ``data`` without the generator's question functions.


def _expected(kind: str, data: dict, q: dict) -> float:
    """The numeric answer to question spec ``q`` (years are numbers too)."""
    t = q["type"]
    if kind == "bar_chart":
        v = {lab: val for lab, val in zip(data["labels"], data["values"], strict=True)}
        return {
            "value": lambda: v[q.get("label", "")],
            "range": lambda: max(v.values()) - min(v.values()),
            "sum": lambda: v[q["labels"][0]] + v[q["labels"][1]],
            "difference": lambda: v[q["labels"][0]] - v[q["labels"][1]],
        }[t]()
    if kind == "line_chart":
        pts = sorted(zip(data["values"], data["years"], strict=True))
        by_year = {y: val for val, y in pts}
        if t == "argmax":
            return pts[-1][1]
        if t == "argmin":
            return pts[0][1]
        if t == "range":
            return pts[-1][0] - pts[0][0]
        return by_year[q["years"][1]] - by_year[q["years"][0]]
    if kind == "pie_chart":
        s = {lab: val for lab, val in zip(data["labels"], data["shares"], strict=True)}
        if t == "share":
            return s[q["label"]]
        a, b = (s[x] for x in q["labels"])
        return a + b if t == "combined" else a - b
    if kind == "shape_count":
        shapes = [s["shape"] for s in data["shapes"]]
        c, sq = shapes.count("circle"), shapes.count("square")
        if t == "count":
            return c if q["shape"] == "circle" else sq
        if t == "total":
            return len(shapes)
        return abs(c - sq)
    if kind == "right_triangle":
        a, b = data["base"], data["height"]
        h = math.sqrt(a * a + b * b)
        if t == "leg":
            return a if q["which"] == "horizontal" else b
        return {"hypotenuse": h, "area": a * b / 2, "perimeter": a + b + h}[t]
    if kind == "rectangle":
        w, h = data["width"], data["height"]
        if t == "side":
            return w if q["which"] == "width" else h
        return {"area": w * h, "perimeter": 2 * w + 2 * h}[t]
    if kind == "table":
        grid = {
            (r, c): v
            for r, vals in zip(data["rows"], data["cells"], strict=True)
            for c, v in zip(data["cols"], vals, strict=True)
        }
        if t == "cell":
            return grid[(q["row"], q["col"])]
        if t == "row_sum":
            return sum(v for (r, _), v in grid.items() if r == q["row"])
        return max(v for (_, c), v in grid.items() if c == q["col"])
    raise AssertionError(kind)


def _check_answer(answer: str, question: str, expected: float) -> None:
    if "Round to one decimal place" in question:
        assert answer == f"{round(expected, 1):.1f}" or abs(float(answer) - expected) <= 0.05 + 1e-9
        assert len(answer.split(".")[1]) == 1, answer
    else:
        assert float(expected).is_integer(), (question, expected)
        assert answer == str(int(expected)), (question, answer, expected)


def test_every_kind_and_content_type(items):
    assert {it.kind for it in items} == set(synth.KINDS)
    for it in items:
        assert it.content_type in {
            "data_chart",
            "diagram",
            "geometry",
            "timeline",
            "map",
            "table",
            "other",
        }


@pytest.mark.parametrize("kind", synth.KINDS)
def test_answers_recomputed_independently(items, kind):
    sample = [it for it in items if it.kind == kind]
    assert len(sample) == N_PER_KIND
    seen_hard_types = set()
    for it in sample:
        _check_answer(it.easy_answer, it.easy_question, _expected(kind, it.data, it.data["easy"]))
        _check_answer(it.hard_answer, it.hard_question, _expected(kind, it.data, it.data["hard"]))
        seen_hard_types.add(it.data["hard"]["type"])
        assert it.easy_question.endswith("?") or it.easy_question.endswith(".")
        assert it.easy_answer.strip() == it.easy_answer and it.easy_answer
        assert it.hard_answer.strip() == it.hard_answer and it.hard_answer
    assert len(seen_hard_types) >= 2, f"{kind}: hard questions never vary"


def test_known_values_by_hand():
    """A 6-8-10 triangle and a fixed bar chart: answers anyone can check."""
    tri = synth._REGISTRY["right_triangle"].question
    data = {"base": 6, "height": 8, "unit": "cm"}
    assert tri(data, {"type": "hypotenuse"})[1] == "10.0"
    assert tri(data, {"type": "area"})[1] == "24.0"
    assert tri(data, {"type": "perimeter"})[1] == "24.0"
    assert tri({"base": 1, "height": 1, "unit": "cm"}, {"type": "hypotenuse"})[1] == "1.4"
    bar = synth._REGISTRY["bar_chart"].question
    data = {"labels": ["A", "B", "C"], "values": [10, 42, 7]}
    assert bar(data, {"type": "range"})[1] == "35"
    assert bar(data, {"type": "difference", "labels": ["B", "A"]})[1] == "32"


def test_data_is_json_and_captions_carry_values(items):
    for it in items:
        assert json.loads(json.dumps(it.data)) == it.data
        json.dumps(it.to_dict())
    for it in items:
        if it.kind in ("bar_chart", "line_chart"):
            assert all(str(v) in it.caption for v in it.data["values"])
        if it.kind == "pie_chart":
            assert all(f"{s}%" in it.caption for s in it.data["shares"])


# ---------------------------------------------------------------------------------------------
# Drawings


def _svg_texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG_NS}text")]


def test_svg_well_formed_with_readable_answers(items):
    for it in items:
        root = ET.fromstring(it.svg)
        assert root.tag == f"{SVG_NS}svg"
        assert (root.get("width"), root.get("height")) == ("320", "240")
        first = root[0]
        assert first.tag == f"{SVG_NS}rect" and first.get("fill") == "#ffffff"
        texts = _svg_texts(root)
        d, kind = it.data, it.kind
        if kind == "bar_chart":
            for label, value in zip(d["labels"], d["values"], strict=True):
                assert label in texts and str(value) in texts
        elif kind == "line_chart":
            assert all(str(y) in texts for y in d["years"])
            assert all(str(v) in texts for v in d["values"])
        elif kind == "pie_chart":
            for label, share in zip(d["labels"], d["shares"], strict=True):
                assert f"{label}: {share}%" in texts
            assert len(list(root.iter(f"{SVG_NS}path"))) == len(d["shares"])
        elif kind == "shape_count":
            circles = len(list(root.iter(f"{SVG_NS}circle")))
            squares = len(list(root.iter(f"{SVG_NS}rect"))) - 1  # minus the background
            shapes = [s["shape"] for s in d["shapes"]]
            assert (circles, squares) == (shapes.count("circle"), shapes.count("square"))
        elif kind == "right_triangle":
            assert f"{d['base']} cm" in texts and f"{d['height']} cm" in texts
        elif kind == "rectangle":
            assert f"{d['width']} cm" in texts and f"{d['height']} cm" in texts
        elif kind == "table":
            assert set(d["rows"]) | set(d["cols"]) <= set(texts)
            assert all(str(v) in texts for row in d["cells"] for v in row)
        # The easy answer is on the picture (except counts, checked above).
        if kind != "shape_count":
            assert any(it.easy_answer in t for t in texts), (it.item_id, it.easy_answer)


def test_svg_renders_with_cairosvg(items):
    cairosvg = pytest.importorskip("cairosvg")
    from PIL import Image

    for kind in synth.KINDS:
        it = next(i for i in items if i.kind == kind)
        png = cairosvg.svg2png(bytestring=it.svg.encode())
        image = Image.open(io.BytesIO(png)).convert("L")
        assert image.size == (320, 240)
        lo, hi = image.getextrema()
        assert hi == 255 and lo < 128, kind  # white background with dark marks


def test_shapes_do_not_overlap_and_stay_inside(items):
    for it in (i for i in items if i.kind == "shape_count"):
        shapes = it.data["shapes"]
        for s in shapes:
            assert s["size"] <= s["x"] <= 320 - s["size"] and s["size"] <= s["y"] <= 240 - s["size"]
        for i, a in enumerate(shapes):
            for b in shapes[i + 1 :]:
                # Bounding squares (circle radius = half side) must be disjoint.
                gap = max(abs(a["x"] - b["x"]), abs(a["y"] - b["y"]))
                assert gap > a["size"] + b["size"], it.item_id


def test_python_compiles_and_never_saves(items):
    for it in items:
        compile(it.python, it.item_id, "exec")
        assert "savefig" not in it.python and ".show(" not in it.python


def test_python_programs_draw_a_figure(items, tmp_path):
    """One program per kind, run in a fresh interpreter with the Agg backend."""
    programs = [next(i for i in items if i.kind == kind).python for kind in synth.KINDS]
    (tmp_path / "programs.json").write_text(json.dumps(programs))
    driver = textwrap.dedent(
        """
        import json, sys
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
        for code in json.load(open(sys.argv[1])):
            plt.close("all")
            exec(compile(code, "item", "exec"), {"__name__": "__main__"})
            fig = plt.gcf()
            fig.canvas.draw()
            pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
            assert len(fig.axes) >= 1
            assert pixels.shape[:2] == (240, 320), pixels.shape
            assert (pixels < 128).any() and (pixels == 255).all(axis=-1).mean() > 0.3
        print("ok", len(plt.get_fignums()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", driver, str(tmp_path / "programs.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


# ---------------------------------------------------------------------------------------------
# Determinism and ids


def test_same_seed_same_items_byte_for_byte():
    a = synth.generate_items(21, seed=7)
    b = synth.generate_items(21, seed=7)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]
    assert [x.svg.encode() for x in a] == [x.svg.encode() for x in b]


def test_same_seed_in_a_fresh_process():
    code = (
        "import hashlib, json; from evovlm import synth; "
        "items = synth.generate_items(14, seed=7); "
        "print(hashlib.sha256(json.dumps([i.to_dict() for i in items]).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(h), "PATH": "/usr/bin:/bin"},
        ).stdout.strip()
        for h in (1, 2)
    }
    assert len(digests) == 1


def test_different_seed_different_items():
    a = synth.generate_items(14, seed=1)
    b = synth.generate_items(14, seed=2)
    assert sum(x.svg != y.svg for x, y in zip(a, b, strict=True)) >= 12
    assert {x.item_id for x in a}.isdisjoint({y.item_id for y in b})


def test_ids_stable_unique_and_prefix_consistent():
    short = synth.generate_items(5, seed=3)
    long = synth.generate_items(30, seed=3)
    assert [x.to_dict() for x in short] == [x.to_dict() for x in long[:5]]
    assert short[0].item_id == "synth-3-00000-bar_chart"
    assert long[8].item_id == "synth-3-00008-line_chart"
    assert len({x.item_id for x in long}) == len(long)


def test_kinds_filter_and_errors():
    only = synth.generate_items(6, seed=0, kinds=["table", "pie_chart"])
    assert [x.kind for x in only] == ["table", "pie_chart"] * 3
    assert synth.generate_items(0, seed=0) == []
    with pytest.raises(ValueError, match="unknown synth kinds"):
        synth.generate_items(3, seed=0, kinds=["histogram"])
    with pytest.raises(ValueError):
        synth.generate_items(-1, seed=0)


def test_item_to_proposal_fields(items):
    fields = synth.item_to_proposal_fields(items[0])
    assert tuple(fields) == parse.PROPOSAL_TAGS
    assert fields["easy_answer"] == items[0].easy_answer
    assert all(isinstance(v, str) and v for v in fields.values())


def test_items_render_ok_in_the_sandbox():
    """The project's renderer accepts both drawings of every kind (SVG in-process, Python in
    the sandboxed workers)."""
    render = pytest.importorskip("evovlm.render")
    import polars as pl

    sample = synth.generate_items(2 * len(synth.KINDS), seed=99)
    cfg = render.RenderConfig(width=224, height=224)
    for it in sample:
        result = render.render_svg(it.svg, cfg)
        assert result.status == "ok", (it.item_id, result.error)
    frame = pl.DataFrame(
        {
            "program_id": [f"{it.item_id}-python" for it in sample[: len(synth.KINDS)]],
            "language": ["python"] * len(synth.KINDS),
            "code": [it.python for it in sample[: len(synth.KINDS)]],
        }
    )
    renders = render.render_programs(frame, cfg, threads=2, progress=False)
    bad = renders.filter(pl.col("status") != "ok").select("program_id", "status", "error")
    assert bad.height == 0, bad.to_dicts()
