import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The embedded tiny model, built once per test session."""
    from evovlm.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-base")


def solver_samples(answers: dict[str, list[str | None]], references: dict[str, str], round_=1):
    """Recorded Solver samples as the pseudo-label stage reads them: one row per sample; keys
    are '<image>-easy' / '<image>-hard'."""
    import polars as pl

    from evovlm.methods.mmzero import pseudolabel

    rows = []
    for item_id, values in answers.items():
        image_id, _, kind = item_id.rpartition("-")
        for j, answer in enumerate(values):
            rows.append(
                {
                    "round": round_,
                    "item_id": item_id,
                    "image_id": image_id,
                    "question_kind": kind,
                    "question": "q",
                    "reference": references[item_id],
                    "sample_index": j,
                    "completion": "",
                    "answer": answer,
                }
            )
    return pl.DataFrame(rows, schema=pseudolabel.SAMPLES_SCHEMA)


def snakemake(
    *args: str, env: dict | None = None, cwd: Path = REPO, timeout: int = 120
) -> subprocess.CompletedProcess:
    """``snakemake *args`` in ``cwd`` (the repository), with ``env`` over this process's
    environment."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
