"""Rule scripts that may build a vLLM engine: vLLM starts its engine process with ``spawn`` (always
on CPU), which imports the script again as the main module, and that process logs on its own
stderr. So every such script does its job under ``if __name__ == "__main__":`` (a spawned process
must not run the job again), and the job's log takes stderr at the file-descriptor level
(``stages.job_log``), where the processes the job starts write too. vLLM itself is told to log
to stderr (it logs to stdout by default, which no rule log holds). The vLLM tier's workflow runs
(tests/test_vllm_workflow.py) check the real job logs."""

import ast
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

ENGINE_SCRIPTS = [
    "propose_concepts",
    "write_code",
    "sample_answers",
    "ask_questions",
    "answer_questions",
    "evaluate_policy",
    "pseudolabel",
]


def _is_main_guard(node) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and isinstance(node.test.comparators[0], ast.Constant)
        and node.test.comparators[0].value == "__main__"
    )


@pytest.mark.parametrize("name", ENGINE_SCRIPTS)
def test_an_engine_script_runs_its_job_only_as_the_main_module(name):
    tree = ast.parse((REPO / "workflow" / "scripts" / f"{name}.py").read_text())
    loose = [
        node
        for node in tree.body
        if not isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))  # docstring
        and not _is_main_guard(node)
    ]
    assert not loose, (
        f"workflow/scripts/{name}.py runs code outside its main guard (line {loose[0].lineno})"
    )
    guarded = [node for node in tree.body if _is_main_guard(node)]
    assert len(guarded) == 1
    assert "snakemake" in ast.unparse(guarded[0])


CHILD = """
import logging
import multiprocessing
import sys

from evovlm.stages import job_log


def child():
    print("from the spawned process", file=sys.stderr, flush=True)
    logging.getLogger("engine").warning("a log line of the spawned process")


if __name__ == "__main__":
    job_log(sys.argv[1])
    print("from the job", file=sys.stderr)
    process = multiprocessing.get_context("spawn").Process(target=child)
    process.start()
    process.join()
"""


def test_the_job_log_holds_what_spawned_processes_write(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(CHILD)
    log = tmp_path / "job.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, str(script), str(log)], check=True, env=env, timeout=120)
    text = log.read_text()
    assert "from the job" in text
    assert "from the spawned process" in text
    assert "a log line of the spawned process" in text


def test_vllm_is_told_to_log_to_stderr():
    code = (
        "import os\n"
        "os.environ.pop('VLLM_LOGGING_STREAM', None)\n"
        "import evovlm.engines.vllm_engine\n"
        "print(os.environ['VLLM_LOGGING_STREAM'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "ext://sys.stderr", out.stderr[-2000:]
