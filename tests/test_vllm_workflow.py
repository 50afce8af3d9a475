"""Two-round runs of the workflow on ``engine.backend: vllm`` (vLLM on CPU in the vLLM tier,
scripts/test-vllm.sh): MM-Zero with full fine-tunes (.test/config_mmzero.yaml) and EvoLMM with
one LoRA adapter per role, served as a ``LoRARequest`` on the shared base
(.test/config_evolmm.yaml), on the same seeds as the hf engine's runs in
tests/test_workflow_e2e.py. Samples differ between engines (other kernels, other sampler); the
funnel must not: the same files with their schemas, row counts that follow the group sizes, ids
that join, metrics that agree with the rows. Every generation job's log holds vLLM's own lines
(its engine process logs to stderr) and the rule scripts are not re-run by vLLM's spawned
engine process.

Slow (minutes) and marked ``vllm``: run with ``scripts/test-vllm.sh``.
"""

import importlib.util
import os
from pathlib import Path

import pytest

from tests.test_workflow_e2e import make_workdir, snakemake
from tests.test_workflow_e2e import test_every_file_exists_with_its_schema as _files_and_schemas
from tests.test_workflow_e2e import test_ids_join_across_files as _ids_join
from tests.test_workflow_e2e import test_metrics_agree_with_the_parquet_rows as _metrics_agree
from tests.test_workflow_e2e import test_row_counts_follow_the_group_sizes as _row_counts

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not installed (scripts/bootstrap.sh --vllm)",
    ),
]

# Layered on the .test case: the vLLM engine, with a context that fits CPU memory (the KV cache
# is VLLM_CPU_KVCACHE_SPACE GiB on CPU). EVOVLM_TEST_CONFIG adds YAML lines, e.g.
# "resources_dir: /some/folder" (builds named by their recipe) to give an hf engine run and this
# run the same warmed model, or a shorter warm-up on a busy machine.
VLLM_CONFIG = "engine: {backend: vllm, max_model_len: 4096}\n"
GENERATION_LOGS = {
    "mmzero": ["propose_concepts", "write_code", "sample_answers"],
    "evolmm": ["ask_questions", "answer_questions"],
}


def _run(workdir: Path, case: str) -> Path:
    extra = os.environ.get("EVOVLM_TEST_CONFIG", "")
    (workdir / "vllm.yaml").write_text(VLLM_CONFIG + extra + "\n")
    with pytest.MonkeyPatch.context() as env:
        # Importing TRL sets VLLM_LOGGING_LEVEL=ERROR in os.environ (trl/_compat.py), and this
        # session imports it (the adapter contract test), so every job would inherit it and
        # vLLM would log errors only. The jobs run with the environment a user's have.
        env.delenv("VLLM_LOGGING_LEVEL", raising=False)
        snakemake(workdir, "--configfile", f".test/{case}.yaml", "vllm.yaml", timeout=3600)
    return workdir


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return _run(make_workdir(tmp_path_factory.mktemp("vllm-mmzero")), "config_mmzero")


@pytest.fixture(scope="module")
def evolmm_run(tmp_path_factory) -> Path:
    return _run(make_workdir(tmp_path_factory.mktemp("vllm-evolmm")), "config_evolmm")


def _logs(root: Path, rule: str) -> list[str]:
    return [p.read_text() for p in sorted((root / "logs" / rule).glob("round_*.log"))]


def _every_generation_job_ran_vllm_and_logged_its_engine_process(root: Path, method: str):
    first, *later = GENERATION_LOGS[method]
    for rule in (first, *later):
        logs = _logs(root, rule)
        assert len(logs) == 2, rule  # one per round
        for text in logs:
            assert "(engine: vllm)" in text
            # vLLM's lines, from this process and from its spawned engine process (stderr at
            # the file-descriptor level), not lost on stdout. The first stage always generates;
            # a later one starts no engine when nothing upstream parsed.
            if rule == first or "non-default args" in text:
                assert "non-default args" in text
                assert "EngineCore" in text


def test_mmzero_funnel_on_vllm_is_the_hf_engines(run):
    """The checks of the hf engine's run (tests/test_workflow_e2e.py), on the vLLM run."""
    _files_and_schemas(run)
    _row_counts(run)
    _ids_join(run)
    _metrics_agree(run)
    _every_generation_job_ran_vllm_and_logged_its_engine_process(run, "mmzero")


def test_evolmm_serves_round_one_adapters_as_lora_requests(evolmm_run):
    from tests.test_workflow_e2e import evolmm_round

    for r in (1, 2):
        d = evolmm_run / f"results/round_{r}"
        metrics = evolmm_round(evolmm_run, r)[3]
        assert {"mean_answer_share", "mean_entropy", "entropy_band_share"} <= set(metrics["rates"])
        for role in ("proposer", "solver"):
            assert (d / f"checkpoint/{role}/adapter_model.safetensors").is_file()
    # Round 2 samples from base + round 1's adapter, served by vLLM (no merged copy)
    (ask,) = _logs(evolmm_run, "ask_questions")[1:]
    assert "results/round_1/checkpoint/proposer" in ask
    assert "'enable_lora': True" in ask
    assert "serving a merged copy" not in ask
    _every_generation_job_ran_vllm_and_logged_its_engine_process(evolmm_run, "evolmm")
