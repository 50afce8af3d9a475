"""The embedded default end to end, for real: tiny model, warm-up, two MM-Zero rounds.

Slow (minutes): marked ``slow``. One module-scoped run is shared by the assertions; further
runs reuse its warmed-up model: three shards (must give the same rows), LoRA training (round 2
samples from base + round 1's adapters) and two EvoLMM rounds.
"""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from evovlm.schema import (
    ANSWERS,
    EVOLMM_ANSWERS,
    IMAGES,
    PROGRAMS,
    PROPOSALS,
    QUESTIONS,
    RENDERS,
    REWARDS,
    read_parquet,
)
from tests.conftest import REPO

pytestmark = pytest.mark.slow

COPY = ("Snakefile", "workflow", "config", "scripts", "envs", ".test")


def effective_config(workdir: Path, test_case: str) -> dict:
    """config/config.yaml, the embedded demo values (config/embedded.yaml: the test cases run the
    embedded model) and the .test case on top (as --configfile does)."""
    import yaml

    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            both = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merge(out[key], value) if both else value
        return out

    base = yaml.safe_load((workdir / "config/config.yaml").read_text())
    base = merge(base, yaml.safe_load((workdir / "config/embedded.yaml").read_text()))
    return merge(base, yaml.safe_load((workdir / ".test" / f"{test_case}.yaml").read_text()))


def evolmm_round(workdir: Path, r: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict]:
    """An EvoLMM run's round ``r``: its images, questions, answers and metrics, checked against
    the config's counts (n questions per image, n answers per parsed question) and the funnel."""
    cfg = effective_config(workdir, "config_evolmm")["evolmm"]
    d = workdir / f"results/round_{r}"
    images = read_parquet(d / "images.parquet", IMAGES)
    questions = read_parquet(d / "questions.parquet", QUESTIONS)
    answers = read_parquet(d / "answers.parquet", EVOLMM_ANSWERS)
    assert images.height == cfg["images_per_round"]
    assert questions.height == images.height * cfg["proposer"]["n"]
    valid = questions.filter(pl.col("parse_ok")).height
    assert answers.height == valid * cfg["solver"]["n"]
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["funnel"]["questions"] == questions.height
    assert metrics["funnel"]["answers"] == answers.height
    return images, questions, answers, metrics


def make_workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, path / name)
    return path


def snakemake(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return proc


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    workdir = make_workdir(tmp_path_factory.mktemp("e2e"))
    snakemake(workdir, "--configfile", ".test/config_mmzero.yaml")
    return workdir


def tables(root: Path, r: int) -> dict[str, pl.DataFrame]:
    d = root / f"results/round_{r}"
    return {
        "proposals": read_parquet(d / "proposals.parquet", PROPOSALS),
        "programs": read_parquet(d / "programs.parquet", PROGRAMS),
        "renders": read_parquet(d / "renders.parquet", RENDERS),
        "answers": read_parquet(d / "answers.parquet", ANSWERS),
        **{
            f"rewards_{role}": read_parquet(d / f"rewards/{role}.parquet", REWARDS)
            for role in ("proposer", "coder", "solver")
        },
    }


def test_every_file_exists_with_its_schema(run):
    for r in (1, 2):
        t = tables(run, r)  # read_parquet checks every declared column and type
        assert (run / f"results/round_{r}/metrics.json").is_file()
        for lineage in ("proposer", "coder", "solver"):
            ckpt = run / f"results/round_{r}/checkpoint/{lineage}"
            assert (ckpt / "config.json").is_file()
            assert (ckpt / "model.safetensors").is_file()
        assert t["proposals"].height > 0


def test_row_counts_follow_the_group_sizes(run):

    cfg = effective_config(run, "config_mmzero")["mmzero"]
    for r in (1, 2):
        t = tables(run, r)
        groups = t["proposals"].group_by("group_id").len()
        assert groups["len"].to_list() == [cfg["proposer"]["n"]] * groups.height
        assert groups.height == 8 * cfg["prompts_per_topic"]  # default topics
        valid = t["proposals"].filter(pl.col("parse_ok")).height
        k, languages = cfg["coder"]["k"], cfg["coder"]["languages"]
        assert t["programs"].height == valid * k * len(languages)  # k per language
        assert t["renders"].height == t["programs"].height
        ok = t["renders"].filter(pl.col("status") == "ok").height
        assert t["answers"].height == ok * 2 * cfg["solver"]["m"]
        assert t["rewards_proposer"].height == t["proposals"].height
        assert t["rewards_coder"].height == t["programs"].height
        assert t["rewards_solver"].height == t["answers"].height


def test_ids_join_across_files(run):
    for r in (1, 2):
        t = tables(run, r)
        assert t["programs"].join(t["proposals"], on="proposal_id", how="anti").height == 0
        assert t["renders"].join(t["programs"], on="program_id", how="anti").height == 0
        assert t["answers"].join(t["renders"], on="program_id", how="anti").height == 0
        for role, key, table in (
            ("proposer", "proposal_id", "proposals"),
            ("coder", "program_id", "programs"),
            ("solver", "answer_id", "answers"),
        ):
            rewards = t[f"rewards_{role}"].rename({"sample_id": key})
            assert rewards.join(t[table], on=key, how="anti").height == 0
            assert rewards[key].n_unique() == t[table].height


def test_every_coder_group_replays_under_its_own_prompt(run):
    """A GRPO group is one prompt: every completion of a Coder group was sampled from the same
    prompt (and prompt ids) and one language, so it replays under the prompt it came from."""
    for r in (1, 2):
        t = tables(run, r)
        per_group = (
            t["programs"]
            .group_by("group_id")
            .agg(
                pl.col("prompt").n_unique().alias("prompts"),
                pl.col("prompt_ids").n_unique().alias("prompt_ids"),
                pl.col("language").n_unique().alias("languages"),
                pl.len().alias("size"),
            )
        )
        assert per_group.height > 0
        assert (per_group["prompts"] == 1).all() and (per_group["prompt_ids"] == 1).all()
        assert (per_group["languages"] == 1).all() and (per_group["size"] >= 2).all()
        scored = t["rewards_coder"].join(
            t["programs"].select(pl.col("program_id").alias("sample_id"), "group_id"),
            on="sample_id",
        )
        assert (scored["group_id"] == scored["group_id_right"]).all()
        summary = json.loads((run / f"results/round_{r}/train/coder.json").read_text())
        assert summary["roles"]["coder"]["dropped_mixed_prompts"] == 0


def test_metrics_agree_with_the_parquet_rows(run):
    for r in (1, 2):
        t = tables(run, r)
        metrics = json.loads((run / f"results/round_{r}/metrics.json").read_text())
        funnel = metrics["funnel"]
        assert funnel["proposals"] == t["proposals"].height
        assert funnel["proposals_parsed"] == t["proposals"]["parse_ok"].sum()
        assert funnel["programs"] == t["programs"].height
        assert funnel["renders_ok"] == t["renders"].filter(pl.col("status") == "ok").height
        assert funnel["answers"] == t["answers"].height
        assert funnel["answers_boxed"] == t["answers"]["answer"].is_not_null().sum()
        assert sum(metrics["render_status"].values()) == t["renders"].height
        for role in ("proposer", "coder", "solver"):
            assert metrics["rewards"][role]["n"] == t[f"rewards_{role}"].height
        rates = metrics["rates"]
        assert {
            "parse_rate",
            "render_rate",
            "solver_agreement",
            "solvability",
            "difficulty",
        } <= set(rates)
        assert set(metrics["stage_seconds"]) >= {
            "propose_concepts",
            "render_images",
            "score_rewards",
        }


def _digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_round_two_samples_from_round_one_checkpoints(run):
    base = _digest(run / "resources/tiny-warm")
    for lineage in ("proposer", "coder", "solver"):
        ckpt = run / f"results/round_1/checkpoint/{lineage}"
        summary = json.loads((run / f"results/round_1/train/{lineage}.json").read_text())
        if not summary.get("copied_previous"):
            assert _digest(ckpt) != base, lineage
    log = (run / "logs/propose_concepts/round_2.1-of-1.log").read_text()
    assert "results/round_1/checkpoint/proposer" in log


def test_raising_rounds_never_reruns_finished_rounds(run):
    proc = snakemake(run, "-n", "--configfile", ".test/config_mmzero.yaml", "--config", "rounds=3")
    out = proc.stdout + proc.stderr
    assert "round=3" in out
    assert "round=1" not in out and "round=2" not in out  # only round 3 jobs are planned


def test_shard_count_does_not_change_rows(run, tmp_path):
    workdir = make_workdir(tmp_path / "shards")
    shutil.copytree(run / "resources", workdir / "resources")
    # Ask for the gathered tables themselves: `--until` with a rule that is both upstream and
    # downstream of another until-rule (gather_shards) trips Snakemake's scheduler (issue 823).
    targets = [f"results/round_1/{name}.parquet" for name in ("proposals", "programs", "answers")]
    snakemake(
        workdir,
        *targets,
        "--configfile",
        ".test/config_mmzero.yaml",
        "--config",
        "rounds=1",
        "shards=3",
    )
    one = tables(run, 1)
    for name, spec in (("proposals", PROPOSALS), ("programs", PROGRAMS), ("answers", ANSWERS)):
        three = read_parquet(workdir / f"results/round_1/{name}.parquet", spec)
        # Ids, prompts, sampled tokens, texts and parsed fields are identical. Log-probs are
        # floats from batches of other shapes (other rows, other padding): equal to ~1e-5, not
        # bit for bit (neither transformers nor vLLM kernels are batch-invariant).
        assert three.drop("logprobs").equals(one[name].drop("logprobs")), name
        for a, b in zip(three["logprobs"], one[name]["logprobs"], strict=True):
            assert len(a) == len(b)
            assert max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0) < 1e-4


def _with_resources(run: Path, path: Path) -> Path:
    workdir = make_workdir(path)
    shutil.copytree(run / "resources", workdir / "resources")
    return workdir


def test_lora_rounds_chain_through_adapters(run, tmp_path):
    """LoRA rounds store a PEFT adapter on the shared base (train.lora_save: adapter, the
    default), and round 2 samples from base + round 1's adapter."""
    workdir = _with_resources(run, tmp_path / "lora")
    snakemake(workdir, "--configfile", ".test/config_lora.yaml")
    trained = 0
    for lineage in ("proposer", "coder", "solver"):
        ckpt = workdir / f"results/round_1/checkpoint/{lineage}"
        assert (ckpt / "adapter_config.json").is_file()
        assert (ckpt / "adapter_model.safetensors").is_file()
        assert not (ckpt / "model.safetensors").exists()  # no full copy of the model
        summary = json.loads((workdir / f"results/round_1/train/{lineage}.json").read_text())
        assert summary["method"] == "lora"
        if not summary["copied_previous"]:
            trained += 1
            assert _adapter_was_trained(ckpt), lineage
        log = (workdir / f"logs/{_GENERATES[lineage]}/round_2.1-of-1.log").read_text()
        assert f"results/round_1/checkpoint/{lineage}" in log
    assert trained >= 1


def _adapter_was_trained(folder: Path) -> bool:
    """PEFT starts every lora_B matrix at zero, so an adapter that took an update has a non-zero
    lora_B; an untrained (or never-saved) adapter has none."""
    from safetensors.torch import load_file

    tensors = load_file(folder / "adapter_model.safetensors")
    lora_b = [t for name, t in tensors.items() if "lora_B" in name]
    return bool(lora_b) and any(bool(t.abs().sum() > 0) for t in lora_b)


_GENERATES = {"proposer": "propose_concepts", "coder": "write_code", "solver": "sample_answers"}


def test_evolmm_rounds_end_to_end(run, tmp_path):

    # The warm-up teaches the method's own formats: EvoLMM warms up the same base model on its
    # Proposer and Solver examples (fewer items than the default, to keep the test short).
    workdir = make_workdir(tmp_path / "evolmm")
    shutil.copytree(run / "resources/tiny-base", workdir / "resources/tiny-base")
    snakemake(workdir, "--configfile", ".test/config_evolmm.yaml")
    warm = json.loads((workdir / "resources/tiny-warm/evovlm_warmup.json").read_text())
    assert set(warm["examples_per_role"]) == {"evolmm_proposer", "evolmm_solver"}
    for r in (1, 2):
        d = workdir / f"results/round_{r}"
        images, questions, answers, metrics = evolmm_round(workdir, r)
        proposer = read_parquet(d / "rewards/proposer.parquet", REWARDS)
        solver = read_parquet(d / "rewards/solver.parquet", REWARDS)
        assert questions.join(images, on="image_id", how="anti").height == 0
        assert answers.join(questions, on="question_id", how="anti").height == 0
        assert proposer.height == questions.height and solver.height == answers.height
        assert proposer["reward"].is_between(0.0, 1.0).all()  # Gaussian of entropy, or 0
        # one lineage per role (EvoLMM: one PEFT adapter per role on the shared base)
        assert (d / "checkpoint/proposer/adapter_model.safetensors").is_file()
        assert (d / "checkpoint/solver/adapter_model.safetensors").is_file()
        assert {"mean_answer_share", "mean_entropy", "entropy_band_share"} <= set(metrics["rates"])
        trained = json.loads((d / "train/solver.json").read_text())
        assert trained["method"] == "lora"
        gallery = (workdir / f"results/report/round_{r}/gallery.html").read_text()
        assert gallery.count("data:image/") >= 1  # 256 px thumbnails, PNG or JPEG
    log = (workdir / "logs/ask_questions/round_2.1-of-1.log").read_text()
    assert "results/round_1/checkpoint/proposer" in log
    from tests.test_report import CHROMIUM, assert_galleries_show

    snakemake(workdir, "--report", "report.html")  # the config: results/config.yaml
    if CHROMIUM:
        assert_galleries_show(workdir / "report.html", tmp_path)
    # evaluated in EvoLMM's own answer format (<answer> tags), not \\boxed{}
    evaluated = pl.read_parquet(workdir / "results/eval/round_2.parquet")
    assert evaluated["completion"].str.contains("<answer>").any()


def test_evaluation_of_base_and_every_round(run):

    from evovlm.schema import EVAL

    n_items = effective_config(run, "config_mmzero").get("eval", {})
    n_items = n_items.get("builtin_items", 32)
    table = pl.read_parquet(run / "results/eval/accuracy.parquet")
    assert table["policy"].to_list() == ["base", "round_1", "round_2"]
    assert table["benchmark"].unique().to_list() == ["procedural"]
    assert table["n"].to_list() == [2 * n_items] * 3
    for row in table.iter_rows(named=True):
        results = read_parquet(run / f"results/eval/{row['policy']}.parquet", EVAL)
        assert row["correct"] == results["correct"].sum()
        assert row["ci95_low"] <= row["accuracy"] <= row["ci95_high"]
    log = (run / "logs/evaluate_policy/round_2.log").read_text()
    assert "results/round_2/checkpoint/solver" in log


def test_report_builds_from_the_run(run, tmp_path):
    """`snakemake --report` after the run: every figure, the galleries, the summary table, model
    cards, TRL's step history and HF-loadable tables. (--cores: the default profile sets it in a
    checkout; this copy of the workflow has no profile.)"""
    import datasets
    from PIL import Image

    from tests.test_report import CHROMIUM, assert_galleries_show, not_blank

    # No --configfile: the run's results/config.yaml is the config of every later command.
    snakemake(run, "--report", "report.html")
    page = (run / "report.html").read_text()
    assert "evovlm-overview" in page and "95% Wilson" in page  # the landing page's tables
    if CHROMIUM:
        assert_galleries_show(run / "report.html", tmp_path)
    figures = ["rounds.png", "eval.png", "pseudolabels.png"]
    figures += [
        f"round_{r}/{name}.png"
        for r in (1, 2)
        for name in ("rewards", "rates", "status", "agreement", "training")
    ]
    for name in figures:
        assert not_blank(run / "results/report" / name), name
        assert Path(name).name in page, name
    for r in (1, 2):
        gallery = (run / f"results/report/round_{r}/gallery.html").read_text()
        assert gallery.count("data:image/") >= 1  # 256 px thumbnails, PNG or JPEG
        assert f"round_{r}/gallery.html" in page or "gallery.html" in page
        labels = json.loads((run / f"results/round_{r}/pseudolabel/summary.json").read_text())
        assert labels["overall"]["n"] > 0
        assert labels["filter"]["kept"] + labels["filter"]["dropped"] == labels["overall"]["n"]
        for lineage in ("proposer", "coder", "solver"):
            ckpt = run / f"results/round_{r}/checkpoint/{lineage}"
            assert f"round {r}" in (ckpt / "README.md").read_text()
            assert not (ckpt / ".snakemake_timestamp").exists()
            summary = json.loads((run / f"results/round_{r}/train/{lineage}.json").read_text())
            if not summary["copied_previous"]:
                history = [e for s in summary["roles"].values() for e in s.get("log_history", [])]
                assert any("loss" in e and "reward" in e for e in history), lineage
    summary = pl.read_parquet(run / "results/summary.parquet")
    assert summary["round"].to_list() == [1, 2]
    assert {"rate_parse_rate", "reward_solver_mean", "eval_procedural_accuracy"} <= set(
        summary.columns
    )
    ds = datasets.load_dataset(
        "parquet",
        data_files=str(run / "results/round_1/renders.parquet"),
        split="train",
        cache_dir=str(run / "hf-cache"),
    )
    ok = [row for row in ds if row["status"] == "ok"]
    assert ok and isinstance(ok[0]["image"], Image.Image)
    assert set(ds["round"]) == {1}


def test_toy_plugin_method_end_to_end(run, tmp_path):
    """A third method defined only in tests/toy_plugin (module, rules file, script, templates):
    its own format warm-up, two real rounds of generation, scoring, GRPO training (on two
    processes under accelerate) and summary, and its speaker evaluated in its own answer format,
    with no other change."""
    import os

    toy = REPO / "tests" / "toy_plugin"
    workdir = make_workdir(tmp_path / "toy")
    shutil.copytree(run / "resources/tiny-base", workdir / "resources/tiny-base")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(toy), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "2",
            "--configfile",
            str(toy / "config.yaml"),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    for r in (1, 2):
        d = workdir / f"results/round_{r}"
        replies = pl.read_parquet(d / "replies.parquet")
        rewards = read_parquet(d / "rewards/speaker.parquet", REWARDS)
        assert replies.height == rewards.height == 4 * 4  # prompts x n
        assert rewards["reward"].is_between(0.0, 1.0).all()
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics["method"] == "toy"
        assert metrics["rates"]["vowel_share"] == pytest.approx(rewards["reward"].mean())
        summary = json.loads((d / "train/speaker.json").read_text())
        assert summary["steps"] == 2 and not summary["copied_previous"]
    assert _digest(workdir / "results/round_1/checkpoint/speaker") != _digest(
        workdir / "resources/tiny-base"
    )
    log = (workdir / "logs/toy_reply/round_2.1-of-1.log").read_text()
    assert "results/round_1/checkpoint/speaker" in log
    # warm-up on the toy's own examples (and its Solver's simple pictures), from the base
    warm = json.loads((workdir / "resources/tiny-warm/evovlm_warmup.json").read_text())
    assert set(warm["examples_per_role"]) == {"toy_speaker"}
    # the picture phase: its Solver's pictures, with the format examples replayed beside them
    assert warm["see"]["examples_per_role"] == {"toy_solver": 4, "toy_speaker": 8}
    assert "resources/tiny-warm" in (workdir / "logs/toy_reply/round_1.1-of-1.log").read_text()
    # the base and each round's speaker, asked with the toy's Solver prompt
    accuracy = pl.read_parquet(workdir / "results/eval/accuracy.parquet")
    assert set(accuracy["policy"]) == {"base", "round_1", "round_2"}
    answers = pl.read_parquet(workdir / "results/eval/round_2.parquet")
    assert answers.height == 4 and answers["format_ok"].dtype == pl.Boolean
    # train.num_processes 2 in its config: each job ran as a module under accelerate
    train_log = (workdir / "logs/train_policy/round_1.speaker.log").read_text()
    assert (
        "accelerate.commands.launch --multi_gpu --num_processes 2 --module evovlm.train"
        in train_log
    )
