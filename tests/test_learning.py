"""Learning, asserted as a direction with a margin beside a control.

Several GRPO rounds of the tiny model on a verifiable reward (the share of completion tokens from
a fixed quarter of the vocabulary): each round samples from the previous round's checkpoint with
the real engine, scores, and trains with TRL through ``train_policy``. The same run at learning
rate 0 is the control: same seeds, so it samples exactly the same completions every round. A run
whose advantage sign is flipped must go the other way, which shows the test can fail.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from evovlm import train
from evovlm.engines import Request, SamplingParams, make_engine

PROMPTS = [f"Say something about item {i}." for i in range(8)]
ROUNDS = 3
LR = 1e-2
# Measured with these seeds: trained 0.248 -> 0.346, flipped sign 0.248 -> 0.104, control flat.
MARGIN = 0.06


def _target(token_id: int, vocab: int) -> bool:
    return token_id < vocab // 4


def _sample_and_score(policy: str, vocab: int) -> pl.DataFrame:
    engine = make_engine(policy, "hf")
    requests = [
        Request(
            messages=[{"role": "user", "content": [{"type": "text", "text": p}]}],
            sampling=SamplingParams(n=8, temperature=1.0, max_tokens=8),
            seed=1000 + i,  # the same seeds every round: the control repeats itself exactly
        )
        for i, p in enumerate(PROMPTS)
    ]
    rows = []
    for i, (request, out) in enumerate(zip(requests, engine.generate(requests), strict=True)):
        for j, sample in enumerate(out.samples):
            ids = sample.token_ids
            rows.append(
                {
                    "sample_id": f"g{i}-s{j}",
                    "group_id": f"g{i}",
                    "prompt": json.dumps(request.messages),
                    "prompt_ids": out.prompt_ids,
                    "completion_ids": ids,
                    "logprobs": sample.logprobs,
                    "reward": sum(_target(t, vocab) for t in ids) / max(len(ids), 1),
                    "image": None,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"image": pl.Binary})


def _run(model_dir, tmp_path, learning_rate: float) -> list[float]:
    """Mean reward of the samples of rounds 1..ROUNDS and of the final policy."""
    from transformers import AutoConfig

    vocab = AutoConfig.from_pretrained(model_dir).text_config.vocab_size
    cfg = train.TrainConfig.from_dict(
        {
            "learning_rate": learning_rate,
            "max_steps": 4,
            "per_device_train_batch_size": 16,
            "gradient_checkpointing": False,
            "save_steps": 0,
            "beta": 0.0,
        }
    )
    policy, means = str(model_dir), []
    for r in range(1, ROUNDS + 1):
        samples = _sample_and_score(policy, vocab)
        means.append(float(samples["reward"].mean()))
        out = tmp_path / f"lr{learning_rate}" / f"round_{r}"
        train.train_policy(policy, {"proposer": samples}, cfg, out / "ckpt", out / "work")
        policy = str(out / "ckpt")
    means.append(float(_sample_and_score(policy, vocab)["reward"].mean()))
    return means


@pytest.fixture(scope="module")
def control(tiny_model_dir, tmp_path_factory):
    return _run(tiny_model_dir, tmp_path_factory.mktemp("control"), 0.0)


def test_grpo_rounds_raise_a_verifiable_reward_beside_a_control(tiny_model_dir, tmp_path, control):
    trained = _run(tiny_model_dir, tmp_path, LR)
    assert trained[0] == control[0]  # round 1: same base, same seeds
    assert len(set(control)) == 1, control  # no update: the same samples every round
    assert trained[-1] - trained[0] >= MARGIN, trained
    assert trained[-1] - control[-1] >= MARGIN, (trained, control)


def test_flipped_advantage_sign_goes_the_other_way(tiny_model_dir, tmp_path, control, monkeypatch):
    """Break the sign of the advantage (negate the reward TRL normalises): the reward falls, so
    the test above would fail."""
    monkeypatch.setattr(
        train.replay,
        "cached_reward",
        lambda completions, cached_reward, **kw: [-float(r) for r in cached_reward],
    )
    flipped = _run(tiny_model_dir, tmp_path, LR)
    assert flipped[0] == control[0]
    assert flipped[-1] - flipped[0] <= -MARGIN, flipped
