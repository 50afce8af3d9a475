"""Rendering sandbox: model-written SVG and Python (matplotlib) programs to PNG images.

    python -m evovlm render IN.parquet OUT.parquet [--config config.yaml] [--threads N]

IN has at least ``program_id``, ``language`` (``svg`` | ``python``) and ``code`` (may be null).
OUT (:data:`RENDERS_SCHEMA`, zstd, written atomically) has one row per input row, in input
order: ``program_id``, ``status``, ``error``, ``image`` (Hugging Face image struct with PNG
bytes, null unless ok), ``width``, ``height``, ``render_ms``. Nothing a program does raises
out of this stage.

Statuses (:data:`RENDER_STATUSES`), exactly one per program:

- ``ok``: an RGB PNG, composited on white, not a single flat colour.
- ``empty``: code is null, empty or whitespace.
- ``not_code``: not a program of its language: SVG without any ``<svg`` element; Python that
  does not compile and does not look like Python (prose, markup, binary garbage); an unknown
  language.
- ``parse_error``: looks like the language but does not parse: malformed XML, root element not
  ``<svg>``, invalid width/height/viewBox; Python SyntaxError.
- ``runtime_error``: parsed but failed: an exception (``error`` = class and message, truncated),
  cairosvg failing, an interpreter crash (``program crashed (SIGSEGV)``), exiting early.
- ``timeout``: over the wall clock (``timeout_s``, process group killed) or CPU (``cpu_seconds``).
- ``memory``: MemoryError under the address-space limit (``memory_mb``), or killed out of memory.
- ``too_large``: code over ``max_code_chars``; SVG width/height/viewBox side over
  ``max_svg_side`` or aspect over ``max_aspect`` (checked before rasterising); an embedded
  raster image that large; a figure side over ``max_figure_inches`` or aspect over
  ``max_aspect`` (refused, never clamped); a file write over ``max_file_mb``.
- ``blank_image``: no figure at all, or the picture is one flat colour.
- ``forbidden``: the program tried to leave the sandbox: SVG DTD entity declarations (billion
  laughs, XXE), XInclude, xml-stylesheet, CSS @import, href/src/url() that is not ``#id`` or a
  ``data:`` image; Python processes (fork, exec, subprocess, os.system), sockets, signals (to
  others, or changing handlers), ctypes, writing outside its private directory, reading
  outside the interpreter/fonts/private directory, changing its limits. Caught exceptions still
  count.

How: :mod:`evovlm.sandbox` (``svg`` rasterises, ``jail`` confines one program's process,
``worker`` is the warm fork server, ``pool`` drives the workers from the host).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pyarrow as pa

from evovlm.sandbox.config import RENDER_STATUSES, RenderConfig, RenderResult
from evovlm.sandbox.pool import PythonRenderPool, RenderPool
from evovlm.sandbox.svg import render_svg
from evovlm.schema import RENDERS, write_parquet

__all__ = [
    "RENDER_STATUSES",
    "RENDERS_SCHEMA",
    "PythonRenderPool",
    "RenderConfig",
    "RenderPool",
    "RenderResult",
    "main",
    "render_programs",
    "render_svg",
]

#: program_id, status, error, image (HF struct<bytes, path>), width, height (int32), render_ms
RENDERS_SCHEMA: pa.Schema = RENDERS.schema


def _results_table(program_ids: list, results: list[RenderResult]) -> pa.Table:
    ok = [r.status == "ok" and r.png is not None for r in results]
    images = [
        {"bytes": r.png, "path": None} if good else None
        for r, good in zip(results, ok, strict=True)
    ]
    columns = {
        "program_id": [None if p is None else str(p) for p in program_ids],
        "status": [r.status for r in results],
        "error": [r.error for r in results],
        "image": images,
        "width": [r.width if good else None for r, good in zip(results, ok, strict=True)],
        "height": [r.height if good else None for r, good in zip(results, ok, strict=True)],
        "render_ms": [float(r.render_ms) for r in results],
    }
    return pa.Table.from_pydict(columns, schema=RENDERS_SCHEMA)


def render_programs(
    df: pl.DataFrame,
    cfg: RenderConfig | None = None,
    threads: int = 1,
    progress: bool = True,
) -> pl.DataFrame:
    """Render every row of ``df`` (``program_id``, ``language``, ``code``) in warm sandboxed
    workers (``cfg.workers``, else ``threads``); one output row per input row, same order,
    schema :data:`RENDERS_SCHEMA`. A tqdm bar goes to stderr when ``progress``."""
    cfg = cfg or RenderConfig()
    missing = [c for c in ("program_id", "language", "code") if c not in df.columns]
    if missing:
        raise ValueError(f"render_programs: input lacks column(s) {missing}")
    ids = df["program_id"].to_list()
    languages = [None if v is None else str(v).strip().lower() for v in df["language"].to_list()]
    codes = df["code"].cast(pl.String).to_list()
    results: list[RenderResult | None] = [None] * len(ids)
    todo = []
    for i, (language, code) in enumerate(zip(languages, codes, strict=True)):
        if code is None or not code.strip():
            results[i] = RenderResult("empty", "empty code")
        elif language not in ("svg", "python"):
            results[i] = RenderResult("not_code", f"unknown language {language!r}")
        else:
            todo.append(i)
    if todo:
        from tqdm import tqdm

        workers = max(1, min(cfg.workers or threads or 1, len(todo)))
        bar = tqdm(
            total=len(todo), desc="render", unit="prog", file=sys.stderr, disable=not progress
        )
        with RenderPool(cfg, workers=workers) as pool:

            def one(i: int) -> None:
                try:
                    results[i] = pool.render(codes[i], languages[i])
                except Exception as exc:  # noqa: BLE001 - nothing raises out of the stage
                    results[i] = RenderResult("runtime_error", f"render failed: {exc}")
                bar.update(1)

            with ThreadPoolExecutor(max_workers=workers) as executor:
                list(executor.map(one, todo))
        bar.close()
    return pl.from_arrow(_results_table(ids, results))


def write_renders(df: pl.DataFrame | pa.Table, path: str | os.PathLike) -> None:
    """Write atomically (temp file in the same folder, then ``os.replace``) with zstd."""
    write_parquet(df, path, RENDERS)


def _load_config(path: str | None) -> RenderConfig:
    if not path:
        return RenderConfig()
    import yaml

    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return RenderConfig.from_dict(data.get("render") or {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evovlm render", description="Render programs to images in the sandbox."
    )
    parser.add_argument("input", help="Parquet with program_id, language, code")
    parser.add_argument("output", help="Parquet to write (renders schema)")
    parser.add_argument("--config", help="config.yaml; its render: section is used")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="workers")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        cfg = _load_config(args.config)
        df = pl.read_parquet(args.input, columns=["program_id", "language", "code"])
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    out = render_programs(df, cfg, threads=max(1, args.threads), progress=not args.no_progress)
    write_renders(out, args.output)
    counts = out["status"].value_counts(sort=True).rows()
    seconds = time.perf_counter() - start
    print(
        f"render: {out.height} programs in {seconds:.1f} s: "
        + ", ".join(f"{s}={n}" for s, n in counts),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
