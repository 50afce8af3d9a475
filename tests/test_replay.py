"""A pathological round (what a broken model emits) through the parsers and the render stage:
no crash, one row per completion with a known status, the limits give their statuses."""

from __future__ import annotations

from evovlm.render import RENDER_STATUSES, RenderConfig
from evovlm.sandbox.replay import KINDS, broken_completions, replay

FAST = RenderConfig(timeout_s=3.0, cpu_seconds=2, memory_mb=512, max_file_mb=4)

EXPECTED = {
    "good-python": {"ok"},
    "good-svg": {"ok"},
    "endless-loop": {"timeout"},
    "memory-hog": {"memory"},
    "huge-array": {"memory"},
    "huge-figure": {"too_large"},
    "megabyte-code": {"too_large"},
    "one-pixel-py": {"blank_image"},
    "one-pixel-svg": {"blank_image"},
    "prose": {"not_code"},
    "binary-junk": {"not_code"},
    "unclosed-svg": {"not_code"},
    "nested-boxed": {"not_code"},
    "nul-in-svg": {"parse_error"},
    "huge-svg": {"ok", "blank_image", "too_large"},
}


def test_pathological_round_every_row_accounted_for():
    completions = broken_completions(2 * len(KINDS) + 4, seed=3)
    assert set(completions["kind"]) == {kind for kind, _, _ in KINDS}
    out = replay(completions, FAST, threads=2)
    assert out["program_id"].to_list() == completions["program_id"].to_list()
    assert set(out["status"]) <= set(RENDER_STATUSES)
    assert out["status"].null_count() == 0
    assert (out["has_image"] == (out["status"] == "ok")).all()
    for kind, status in zip(out["kind"], out["status"], strict=True):
        if kind in EXPECTED:
            assert status in EXPECTED[kind], (kind, status)
    # the Solver parser on deeply nested \boxed{}: the innermost answer, no recursion error
    nested = out.filter(out["kind"] == "nested-boxed")
    assert (nested["solver_answer_chars"] > 0).all()
