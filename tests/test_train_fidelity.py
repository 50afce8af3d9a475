"""Training as the references do it (issue 31), each against hand-computed numbers: EvoLMM's
advantage r - b (no std division), its exponential KL controller carried across rounds, its
Proposer updated once per 25 Solver updates, and ``train.passes`` (each stored completion used
that many times). Real TRL training of the tiny model on CPU."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from evovlm import methods, train
from evovlm.train.replay import AdaptiveKL, pass_order, plan_steps, update_ratio_steps
from tests.test_train import _config, _samples, _train

pytestmark = pytest.mark.filterwarnings("ignore")

CONSENSUS = [1.0, 1.0, 1.0, 1.0, 0.95]  # four agree, one rambles: the length factor 0.95


@pytest.fixture(scope="module")
def text_samples(tiny_model_dir):
    return _samples(tiny_model_dir, n_groups=4, size=4, images=False)


@pytest.fixture(scope="module")
def consensus_group(tiny_model_dir):
    """One real group of five completions with the rewards of a consensus group."""
    samples = _samples(tiny_model_dir, n_groups=1, size=5, images=False)
    return samples.with_columns(pl.Series("reward", CONSENSUS))


def _trained_advantages(model_dir, samples, cfg, tmp_path) -> list[float]:
    """The advantages TRL computed in the first step, per completion 0..4 of the group."""
    from evovlm.modeling import load_processor

    groups, _ = train.build_groups("solver", samples, load_processor(model_dir))
    _, trainer, record = train.train_role(
        str(model_dir), str(model_dir), groups, load_processor(model_dir), cfg, tmp_path / "w"
    )
    assert record["steps"] == 1
    return trainer.advantages[0][:5]  # a step of one group: completion k at position k


# --- E2: the advantage -----------------------------------------------------------------------


def test_evolmm_advantage_is_reward_minus_group_mean(tiny_model_dir, consensus_group, tmp_path):
    """[1, 1, 1, 1, 0.95]: mean 0.99, so r - b = +0.01 x4 and -0.04 (the EvoLMM reference's
    reward - baseline), not TRL's group-scaled +0.445 and -1.78."""
    cfg = train.TrainConfig.from_dict(
        {"max_steps": 1, "per_device_train_batch_size": 5, "save_steps": 0}, methods.get("evolmm")
    )
    assert cfg.scale_rewards == "none"
    advantages = _trained_advantages(tiny_model_dir, consensus_group, cfg, tmp_path)
    assert advantages == pytest.approx([0.01, 0.01, 0.01, 0.01, -0.04], abs=1e-6)


def test_mmzero_advantage_stays_group_scaled(tiny_model_dir, consensus_group, tmp_path):
    """MM-Zero (EasyR1's GRPO) divides by the group's std: unbiased std of [1,1,1,1,0.95] is
    sqrt(0.002 / 4) = 0.022361; (1 - 0.99) / (0.022361 + 1e-4) = +0.445, -0.04 / ... = -1.781."""
    cfg = train.TrainConfig.from_dict(
        {"max_steps": 1, "per_device_train_batch_size": 5, "save_steps": 0}, methods.get("mmzero")
    )
    assert cfg.scale_rewards == "group"
    advantages = _trained_advantages(tiny_model_dir, consensus_group, cfg, tmp_path)
    assert advantages == pytest.approx([0.44524] * 4 + [-1.78098], abs=1e-4)


# --- E1: the KL controller -------------------------------------------------------------------

# beta from 1e-3 at KL = 10 x target (0.2 against 0.02), rate 0.1: x exp(0.9) = 2.4596 a step
EXPONENTIAL_PATH = [0.001, 0.0024596, 0.0060496, 0.0148797, 0.0365982]
# the earlier controller: x (1 + 0.1 * clip(9, -1, 1)) = 1.1 a step
PROPORTIONAL_PATH = [0.001, 0.0011, 0.00121, 0.001331, 0.0014641]


@pytest.mark.parametrize(
    ("update", "path"), [("exponential", EXPONENTIAL_PATH), ("proportional", PROPORTIONAL_PATH)]
)
def test_beta_path_at_ten_times_the_target(update, path):
    """The trainer callback itself, fed four logged steps of KL 0.2."""
    cfg = train.TrainConfig.from_dict({"kl_update": update}, methods.get("evolmm"))
    callback = AdaptiveKL.make(cfg)

    class Trainer:
        beta = cfg.kl_init_beta

    callback.trainer = Trainer()
    for _ in range(4):
        callback.on_log(None, None, None, logs={"kl": 0.2})
    assert callback.betas == pytest.approx(path[:4], rel=1e-4)
    assert callback.last == pytest.approx(path[4], rel=1e-4)


def test_exponential_beta_hand_computed_and_bounded():
    assert train.adaptive_beta(0.001, 0.02, 0.02, 0.1) == pytest.approx(0.001)  # on target
    assert train.adaptive_beta(0.001, 0.0, 0.02, 0.1) == pytest.approx(0.001 * math.exp(-0.1))
    assert train.adaptive_beta(50.0, 2.0, 0.02, 0.1) == 100.0  # the reference's kl_max
    assert train.adaptive_beta(2e-8, 0.0, 0.02, 10.0) == 1e-8  # and kl_min


@pytest.mark.parametrize("carry", [True, False])
def test_beta_is_carried_into_the_next_round(tiny_model_dir, text_samples, tmp_path, carry):
    """Round 1 ends with beta_last (written beside the checkpoint); round 2 starts there (the
    reference never resets beta), or at kl_init_beta with kl_carry false. Each step's beta follows
    the exponential rule on the KL TRL logged for the step before."""
    cfg = _config(max_steps=3, kl_control="adaptive", kl_carry=carry)
    one = train.train_policy(
        str(tiny_model_dir), {"proposer": text_samples}, cfg, tmp_path / "r1", tmp_path / "w1"
    )
    r1 = one["roles"]["proposer"]
    kls = [e["kl"] for e in r1["log_history"] if "kl" in e]
    expected = [cfg.kl_init_beta]
    for kl in kls:
        expected.append(train.adaptive_beta(expected[-1], kl, cfg.kl_target, cfg.kl_rate))
    assert r1["beta_per_step"] == pytest.approx(expected[:3], rel=1e-6)
    assert r1["beta_last"] == pytest.approx(expected[3], rel=1e-6)
    saved = json.loads((tmp_path / "r1" / "kl_coefficient.json").read_text())
    assert saved == {"proposer": pytest.approx(r1["beta_last"])}

    two = train.train_policy(
        str(tmp_path / "r1"), {"proposer": text_samples}, cfg, tmp_path / "r2", tmp_path / "w2"
    )
    start = two["roles"]["proposer"]["beta_per_step"][0]
    assert start == pytest.approx(r1["beta_last"] if carry else cfg.kl_init_beta, rel=1e-6)


def test_resumed_job_gets_its_beta_back(tiny_model_dir, text_samples, tmp_path):
    """An interrupted job rerun resumes from its TRL checkpoint: the coefficient is rebuilt
    from the logged KLs, so the round still ends on the same beta (not kl_init_beta)."""
    cfg = _config(max_steps=2, save_steps=1, keep_trl_checkpoints=True, kl_control="adaptive")
    args = (str(tiny_model_dir), {"proposer": text_samples}, cfg, tmp_path / "ckpt", tmp_path / "w")
    first = train.train_policy(*args)["roles"]["proposer"]
    again = train.train_policy(*args)["roles"]["proposer"]
    assert again["resumed_from"].endswith("checkpoint-2") and again["loss"] == []
    assert first["beta_last"] != cfg.kl_init_beta
    assert again["beta_last"] == pytest.approx(first["beta_last"], rel=1e-9)


# --- train.passes ----------------------------------------------------------------------------


def test_plan_steps_and_pass_order_hand_computed():
    assert plan_steps(None, 12, 40, 4) == 12  # today's: max_steps, whatever the groups
    assert plan_steps(1, 12, 40, 4) == 10  # 160 completions / 16 a step
    assert plan_steps(5, 12, 40, 4) == 50
    assert plan_steps(1, 12, 3, 2) == 2  # ceil(3 / 2)
    order = pass_order(5, 3 * 4, seed=0)  # 2 passes over 5 groups + 2 to fill the last step
    assert sorted(order[:5]) == sorted(order[5:10]) == [0, 1, 2, 3, 4]
    assert len(order) == 12 and len(set(order[10:])) == 2


@pytest.mark.parametrize(
    ("passes", "max_steps", "n_groups", "steps", "histogram"),
    [
        (1, 12, 4, 2, {"1": 16}),  # 4 groups of 4, 2 a step: each completion once
        (2, 12, 4, 4, {"2": 16}),
        (1, 12, 3, 2, {"1": 8, "2": 4}),  # 3 groups, 2 steps of 2: one group fills the last
        (None, 10, 4, 10, {"5": 16}),  # today's: 10 steps over 4 groups, each completion 5x
    ],
)
def test_each_completion_is_used_passes_times(
    tiny_model_dir, text_samples, tmp_path, passes, max_steps, n_groups, steps, histogram
):
    samples = text_samples.filter(pl.col("group_id").is_in([f"g{i}" for i in range(n_groups)]))
    cfg = _config(passes=passes, max_steps=max_steps, learning_rate=0.0)
    summary = train.train_policy(
        str(tiny_model_dir), {"coder": samples}, cfg, tmp_path / "ckpt", tmp_path / "w"
    )
    role = summary["roles"]["coder"]
    assert role["steps"] == role["steps_planned"] == steps
    assert role["completion_uses"]["histogram"] == histogram


# --- E3: the Proposer's update ratio ---------------------------------------------------------


def test_update_ratio_hand_computed():
    assert update_ratio_steps(12, 25) == 1  # at least one update
    assert update_ratio_steps(50, 25) == 2
    assert update_ratio_steps(51, 25) == 3
    assert update_ratio_steps(12, 1) == 12


def test_proposer_runs_the_solvers_steps_over_the_ratio(tiny_model_dir, text_samples, tmp_path):
    """Its own lineage: the Solver's steps from the Solver job's summary (60 / 25 -> 3)."""
    summary = _train(
        tiny_model_dir,
        {"proposer": text_samples},
        _config(passes=1, learning_rate=0.0),
        tmp_path,
        update_ratio={"proposer": ("solver", 25)},
        reference_steps={"solver": 60},
    )
    assert summary["roles"]["proposer"]["steps"] == 3


def test_the_solvers_steps_come_from_its_summary(tmp_path):
    from evovlm.train.job import steps_of

    trained = tmp_path / "solver.json"
    trained.write_text(json.dumps({"roles": {"solver": {"steps": 37, "trainable_groups": 9}}}))
    skipped = tmp_path / "coder.json"
    skipped.write_text(json.dumps({"roles": {"coder": {"skipped": True}}}))
    assert steps_of([trained, skipped]) == {"solver": 37, "coder": 0}
    assert update_ratio_steps(steps_of([trained])["solver"], 25) == 2


def test_shared_lineage_proposer_runs_at_the_ratio(tiny_model_dir, text_samples, tmp_path):
    """One lineage: the Solver's planned steps (passes 2: 2 x 4 groups / 2 a step = 4) over the
    ratio 3 -> 2 Proposer steps, which use 4 of its 16 completions once."""
    solver = text_samples.with_columns(pl.lit(None, dtype=pl.Binary).alias("image"))
    summary = _train(
        tiny_model_dir,
        {"proposer": text_samples, "solver": solver},
        _config(passes=2, learning_rate=0.0),
        tmp_path,
        update_ratio={"proposer": ("solver", 3)},
    )
    assert summary["roles"]["solver"]["steps"] == 4
    assert summary["roles"]["proposer"]["steps"] == 2
    assert summary["roles"]["proposer"]["completion_uses"]["histogram"] == {"1": 16}


def test_evolmm_asks_for_the_reference_ratio():
    from evovlm import methods
    from evovlm.experiment import validate_config

    config = validate_config({"method": "evolmm"})
    assert methods.get("evolmm").sample_options(config) == {
        "update_ratio": {"proposer": ["solver", 25]}
    }
    config = validate_config({"method": "evolmm", "evolmm": {"proposer_update_ratio": 1}})
    assert methods.get("evolmm").sample_options(config) == {}


@pytest.mark.parametrize("passes", ["1", "null"])
def test_proposer_job_waits_for_the_solvers_steps_only_with_passes(tmp_path, passes):
    """With train.passes the Solver's steps depend on its groups: the Proposer's training job
    reads them from the Solver's summary (an input); with max_steps it needs nothing."""
    import subprocess
    import sys

    from tests.conftest import REPO

    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "1"]
    cmd += ["--directory", str(tmp_path), "results/round_1/train/proposer.json"]
    cmd += ["--config", "method=evolmm", "rounds=1", f"train={{passes: {passes}}}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = (proc.stdout + proc.stderr).split("\nrule ")
    [proposer] = [j for j in jobs if j.startswith("train_policy") and "lineage=proposer" in j]
    waits = "results/round_1/train/solver.json" in proposer.split("output:")[0]
    assert waits is (passes == "1")
