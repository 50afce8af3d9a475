"""GRPO training stage: groups, replay through TRL, learning, checkpoints (tiny model, CPU)."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest
import torch

from evovlm import methods, train
from evovlm.engines import Request, SamplingParams, make_engine
from evovlm.methods.mmzero.samples import mmzero_role_samples
from evovlm.stages import png_to_image

pytestmark = pytest.mark.filterwarnings("ignore")


def _png(i: int) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([4 + 6 * i, 6, 24 + 6 * i, 44], fill=(40 * i % 255, 90, 200))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _samples(model_dir, n_groups: int, size: int, images: bool, max_tokens: int = 8):
    """Real completions from the engine; sample 0 of each group gets the highest reward."""
    engine = make_engine(str(model_dir), "hf")
    jobs = []
    for g in range(n_groups):
        content = [{"type": "text", "text": f"Describe item number {g} briefly."}]
        pictures = []
        if images:
            content = [{"type": "image"}, *content]
            pictures = [_png(g)]
        messages = [{"role": "user", "content": content}]
        request = Request(
            messages=messages,
            images=[png_to_image(p) for p in pictures],
            sampling=SamplingParams(n=size, temperature=1.0, max_tokens=max_tokens),
            seed=100 + g,
        )
        jobs.append((g, messages, pictures, request))
    rows = []
    for (g, messages, pictures, _), out in zip(
        jobs, engine.generate([j[3] for j in jobs]), strict=True
    ):
        for j, sample in enumerate(out.samples):
            rows.append(
                {
                    "sample_id": f"g{g}-s{j}",
                    "group_id": f"g{g}",
                    "prompt": json.dumps(messages),
                    "prompt_ids": out.prompt_ids,
                    "completion_ids": sample.token_ids,
                    "logprobs": sample.logprobs,
                    "reward": 1.0 if j == 0 else 0.1 * j,
                    "image": pictures[0] if pictures else None,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"image": pl.Binary})


def _config(**kw) -> train.TrainConfig:
    base = dict(
        learning_rate=5e-4,
        max_steps=4,
        per_device_train_batch_size=8,
        gradient_checkpointing=False,
        save_steps=0,
    )
    base.update(kw)
    return train.TrainConfig.from_dict(base)


def _train(model_dir, samples: dict, cfg, folder, ckpt="ckpt", work="w", **options) -> dict:
    """``train.train_policy`` from ``model_dir`` into ``folder/ckpt``, TRL state in ``folder/work``."""
    return train.train_policy(str(model_dir), samples, cfg, folder / ckpt, folder / work, **options)


def _state(path) -> dict[str, torch.Tensor]:
    from evovlm.modeling import load_model

    return {k: v.detach().clone() for k, v in load_model(path, device="cpu").state_dict().items()}


@torch.no_grad()
def _winner_logprobs(path, samples: pl.DataFrame) -> list[float]:
    """Teacher-forced log-prob of sample 0 of every group under the model at ``path``."""
    from evovlm.modeling import load_model, load_processor

    model, processor = load_model(path, device="cpu"), load_processor(path)
    groups, _ = train.build_groups("r", samples)
    out = []
    for g in groups:
        text = processor.apply_chat_template(g.messages, add_generation_prompt=True, tokenize=False)
        enc = processor(text=[text], images=g.images or None, return_tensors="pt")
        prompt = enc["input_ids"]
        completion = torch.tensor([g.completion_ids[0]])
        ids = torch.cat([prompt, completion], dim=1)
        extra = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
        if "mm_token_type_ids" in extra:
            extra["mm_token_type_ids"] = torch.cat(
                [extra["mm_token_type_ids"], torch.zeros_like(completion)], dim=1
            )
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits
        lp = torch.log_softmax(logits[0, prompt.shape[1] - 1 : -1].float(), dim=-1)
        out.append(lp.gather(-1, completion[0].unsqueeze(-1)).sum().item())
    return out


@pytest.fixture(scope="module")
def text_samples(tiny_model_dir):
    return _samples(tiny_model_dir, n_groups=4, size=4, images=False)


@pytest.fixture(scope="module")
def image_samples(tiny_model_dir):
    return _samples(tiny_model_dir, n_groups=4, size=4, images=True)


@pytest.fixture(scope="module")
def full_image_run(tiny_model_dir, image_samples, tmp_path_factory):
    """Full fine-tune on solver-like image groups with the vision tower unfrozen."""
    tmp = tmp_path_factory.mktemp("full_image")
    summary = _train(
        tiny_model_dir,
        {"solver": image_samples},
        _config(freeze_vision_tower=False),
        tmp,
        work="work",
    )
    return summary, tmp / "ckpt"


# --- config and grouping -------------------------------------------------------------------


def test_config_rejects_unknown_and_bad_values():
    assert train.TrainConfig.from_dict({}).learning_rate == 1e-6
    with pytest.raises(ValueError, match="unknown train config key"):
        train.TrainConfig.from_dict({"learning_rat": 1e-5})
    with pytest.raises(ValueError, match="method"):
        train.TrainConfig.from_dict({"method": "qlora"})


def test_plan_batches_holds_whole_groups():
    assert train.plan_batches(4, 8, 1, 1) == (8, 2)
    assert train.plan_batches(5, 8, 2, 1) == (10, 4)  # rounded up: 20 completions = 4 groups
    assert train.plan_batches(2, 3, 1, 1) == (4, 2)


def _rows(group: str, rewards: list[float], n_tokens: int = 3) -> list[dict]:
    return [
        {
            "sample_id": f"{group}-{j}",
            "group_id": group,
            "prompt": json.dumps([{"role": "user", "content": [{"type": "text", "text": "q"}]}]),
            "prompt_ids": [1, 2, 3],
            "completion_ids": [5] * n_tokens,
            "logprobs": [-1.0] * n_tokens,
            "reward": r,
            "image": None,
        }
        for j, r in enumerate(rewards)
    ]


def test_equal_reward_groups_are_dropped_and_counted():
    frame = pl.DataFrame(
        _rows("a", [1.0, 1.0, 1.0, 1.0])
        + _rows("b", [0.0, 1.0, 0.0, 0.0])
        + _rows("c", [-1.0, -1.0, -1.0, -1.0])
        + _rows("d", [0.0, 1.0])  # smaller than the role's group size
        + _rows("e", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),  # larger: subsampled to 4
        schema_overrides={"image": pl.Binary},
    )
    groups, stats = train.build_groups("proposer", frame)
    assert stats.groups_total == 5
    assert stats.dropped_zero_variance == 2
    assert stats.dropped_size_mismatch == 1
    assert stats.group_size == 4
    assert sorted(g.group_id for g in groups) == ["b", "e"]
    assert all(g.size == 4 for g in groups)


def test_mmzero_join_uses_in_band_solver_rows_and_render_images():
    answers = pl.DataFrame(
        {
            "answer_id": ["p1-easy-a0", "p1-easy-a1", "p2-hard-a0"],
            "program_id": ["p1", "p1", "p2"],
            "group_id": ["p1-easy", "p1-easy", "p2-hard"],
            "prompt": ["[]"] * 3,
            "prompt_ids": [[1], [1], [2]],
            "completion_ids": [[3], [4], [5]],
            "logprobs": [[-1.0], [-1.0], [-1.0]],
        }
    )
    rewards = pl.DataFrame(
        {
            "sample_id": ["p1-easy-a0", "p1-easy-a1", "p2-hard-a0"],
            "group_id": ["p1-easy", "p1-easy", "p2-hard"],
            "reward": [1.0, 0.0, 1.0],
            "in_band": [True, True, False],
        }
    )
    renders = pl.DataFrame(
        {"program_id": ["p1", "p2"], "image": [{"bytes": b"A", "path": None}, {"bytes": b"B"}]}
    )
    out = mmzero_role_samples(
        None, None, answers, renders, {"solver": rewards}, solver_questions=["easy", "hard"]
    )["solver"]
    assert out["sample_id"].to_list() == ["p1-easy-a0", "p1-easy-a1"]
    assert out["image"].to_list() == [b"A", b"A"]
    # MM-Zero's default: the Solver trains on the hard question only (p2 is out of band)
    hard_only = mmzero_role_samples(None, None, answers, renders, {"solver": rewards})
    assert hard_only["solver"].height == 0
    in_band = rewards.with_columns(pl.lit(True).alias("in_band"))
    hard_only = mmzero_role_samples(None, None, answers, renders, {"solver": in_band})
    assert hard_only["solver"]["sample_id"].to_list() == ["p2-hard-a0"]


def test_coder_render_band_keeps_groups_with_mixed_render_outcomes():
    programs = pl.DataFrame(
        {
            "program_id": [f"p{g}-c{j}" for g in range(3) for j in range(4)],
            "group_id": [f"p{g}-svg" for g in range(3) for _ in range(4)],
            "prompt": ["[]"] * 12,
            "prompt_ids": [[1]] * 12,
            "completion_ids": [[j] for j in range(12)],
            "logprobs": [[-1.0]] * 12,
        }
    )
    rendered = [True] * 4 + [True, False, False, False] + [True, True, False, False]
    rewards = pl.DataFrame(
        {
            "sample_id": programs["program_id"],
            "group_id": programs["group_id"],
            "reward": [1.0 + 0.1 * j for j in range(12)],
            "rendered": rendered,
        }
    )
    # render rates 1.0, 0.25, 0.5: the band [0.25, 0.75] keeps the last two (bounds included)
    out = mmzero_role_samples(
        None, programs, None, None, {"coder": rewards}, coder_render_band=(0.25, 0.75)
    )["coder"]
    assert out["group_id"].unique().sort().to_list() == ["p1-svg", "p2-svg"]
    everything = mmzero_role_samples(None, programs, None, None, {"coder": rewards})
    assert everything["coder"].height == 12


def test_group_of_mixed_prompts_is_refused_and_counted():
    """Issue 14's bug: one Python and one SVG program in one group. Every completion would be
    replayed under the first row's prompt. The old check compared only the first row's cached
    prompt ids with the processor's tokenisation of that same first prompt, so it never saw the
    second prompt; build_groups now compares every row with the first."""
    python = _rows("p0", [1.0, 0.0])
    svg = [
        dict(r, sample_id=f"p0-svg-{j}", prompt='[{"svg": 1}]', prompt_ids=[7, 8])
        for j, r in enumerate(_rows("p0", [0.5, 0.2]))
    ]
    good = _rows("p1", [1.0, 0.0, 0.5, 0.2])
    frame = pl.DataFrame(python + svg + good, schema_overrides={"image": pl.Binary})
    groups, stats = train.build_groups("coder", frame)
    assert stats.dropped_mixed_prompts == 1
    assert [g.group_id for g in groups] == ["p1"]


# --- training ------------------------------------------------------------------------------


def test_full_finetune_changes_every_trainable_parameter(tiny_model_dir, full_image_run):
    summary, ckpt = full_image_run
    assert summary["steps"] == 4 and not summary["copied_previous"]
    assert len(summary["loss"]) == 4 and len(summary["seconds_per_step"]) == 4
    before, after = _state(tiny_model_dir), _state(ckpt)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert unchanged == [], unchanged
    # the vision tower itself (not only the projector) trained from the image groups
    assert any("visual.blocks" in k for k in before)


def test_learning_image_groups_raise_winner_logprob(tiny_model_dir, image_samples, full_image_run):
    _, ckpt = full_image_run
    start = _winner_logprobs(tiny_model_dir, image_samples)
    end = _winner_logprobs(ckpt, image_samples)
    assert sum(e > s for s, e in zip(start, end, strict=True)) >= len(start) - 1, (start, end)
    assert sum(end) > sum(start)


def test_learning_text_groups_and_frozen_vision_tower(tiny_model_dir, text_samples, tmp_path):
    summary = _train(
        tiny_model_dir, {"proposer": text_samples}, _config(freeze_vision_tower=True), tmp_path
    )
    assert summary["groups_trained"] == 4
    start = _winner_logprobs(tiny_model_dir, text_samples)
    end = _winner_logprobs(tmp_path / "ckpt", text_samples)
    assert all(e > s for s, e in zip(start, end, strict=True)), (start, end)
    before, after = _state(tiny_model_dir), _state(tmp_path / "ckpt")
    vision = [k for k in before if "visual.blocks" in k]
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)
    assert not torch.equal(
        before["model.language_model.layers.0.self_attn.q_proj.weight"],
        after["model.language_model.layers.0.self_attn.q_proj.weight"],
    )
    assert not (tmp_path / "w").exists()  # TRL state removed after success


def test_lora_merged_target_weights_change(tiny_model_dir, text_samples, tmp_path):
    cfg = _config(
        method="lora",
        lora_save="merged",
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        learning_rate=5e-3,
        kl_control="adaptive",  # EvoLMM's set-up: LoRA and an adaptive KL coefficient
        kl_update="proportional",  # the bounded rule: 0.9x to 1.1x a step
    )
    summary = train.train_policy(
        str(tiny_model_dir), {"coder": text_samples}, cfg, tmp_path / "ckpt", tmp_path / "w"
    )
    betas = summary["roles"]["coder"]["beta_per_step"]
    assert len(betas) == 4 and betas[0] == pytest.approx(0.001)
    assert all(
        0.0009 - 1e-12 <= b / a * 0.001 <= 0.0011 + 1e-12
        for a, b in zip(betas[:-1], betas[1:], strict=True)
    )
    assert betas[1] != betas[0]  # the coefficient moves with the measured KL
    before, after = _state(tiny_model_dir), _state(tmp_path / "ckpt")
    assert set(before) == set(after)  # merged: a plain model, no adapter keys
    from evovlm.modeling import load_model

    targets = train.lora_target_names(
        load_model(tiny_model_dir, device="cpu"), cfg.lora_target_modules, True
    )
    assert any("merger" in t for t in targets) and not any("blocks" in t for t in targets)
    lm_targets = [f"{t}.weight" for t in targets if "language_model" in t]
    assert lm_targets and all(not torch.equal(before[k], after[k]) for k in lm_targets)
    untouched = [k for k in before if "norm" in k or "visual.blocks" in k or "embed" in k]
    assert untouched and all(torch.equal(before[k], after[k]) for k in untouched)


def test_lora_adapters_chain_rounds(tiny_model_dir, text_samples, tmp_path):
    """Adapter round trip: round 1 stores an adapter, base + adapter samples like the merged
    model, round 2 trains the same adapter on with the KL reference = its starting weights."""
    from safetensors.torch import load_file

    from evovlm.modeling import adapter_base, load_model, load_processor

    cfg = _config(
        method="lora",
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        learning_rate=5e-3,
        lora_save="adapter",
    )
    assert cfg.adapters
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    train.train_policy(str(tiny_model_dir), {"coder": text_samples}, cfg, r1, tmp_path / "w1")
    assert (r1 / "adapter_config.json").is_file() and (r1 / "adapter_model.safetensors").is_file()
    assert not (r1 / "model.safetensors").exists()
    assert adapter_base(r1) == str(tiny_model_dir)
    a1 = load_file(r1 / "adapter_model.safetensors")
    assert all(v.dtype == torch.float32 for v in a1.values())
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in a1.items())
    # merged export of the same policy: identical samples, log-probs within 1e-5
    merged = tmp_path / "merged"
    load_model(r1, device="cpu").save_pretrained(merged)
    load_processor(r1).save_pretrained(merged)
    request = Request(
        messages=json.loads(text_samples["prompt"][0]),
        sampling=SamplingParams(n=4, temperature=1.0, max_tokens=8),
        seed=7,
    )
    (a,) = make_engine(str(r1), "hf").generate([request])
    (b,) = make_engine(str(merged), "hf").generate([request])
    for x, y in zip(a.samples, b.samples, strict=True):
        assert x.token_ids == y.token_ids
        assert max(abs(p - q) for p, q in zip(x.logprobs, y.logprobs, strict=True)) < 1e-5
    # round 2 continues the adapter; the first step's KL is against base + round-1 adapter
    summary = train.train_policy(str(r1), {"coder": text_samples}, cfg, r2, tmp_path / "w2")
    kl = [h["kl"] for h in summary["roles"]["coder"]["log_history"] if "kl" in h]
    assert kl and abs(kl[0]) < 1e-6, kl
    a2 = load_file(r2 / "adapter_model.safetensors")
    assert set(a2) == set(a1) and not any(".ref." in k for k in a2)
    assert any(not torch.equal(a1[k], a2[k]) for k in a1)
    assert adapter_base(r2) == str(tiny_model_dir)


def test_lora_adapter_copy_when_untrained(tiny_model_dir, text_samples, tmp_path):
    flat = text_samples.with_columns(pl.lit(0.5).alias("reward"))
    cfg = _config(method="lora", lora_r=4, lora_alpha=8, lora_save="adapter")
    summary = train.train_policy(
        str(tiny_model_dir), {"coder": flat}, cfg, tmp_path / "c", tmp_path / "w"
    )
    assert summary["copied_previous"]
    assert (tmp_path / "c" / "adapter_config.json").is_file()
    assert _winner_logprobs(tmp_path / "c", text_samples) == pytest.approx(
        _winner_logprobs(tiny_model_dir, text_samples), abs=1e-5
    )


def test_shared_lineage_trains_roles_in_turn(tiny_model_dir, text_samples, image_samples, tmp_path):
    coder = text_samples.head(8)  # two groups of 4 with signal
    summary = _train(
        tiny_model_dir, {"solver": image_samples, "coder": coder}, _config(max_steps=2), tmp_path
    )
    assert list(summary["roles"]) == ["coder", "solver"]
    assert summary["steps"] == 4 and summary["groups_trained"] == 6


def test_no_trainable_group_copies_previous_policy(tiny_model_dir, text_samples, tmp_path):
    flat = text_samples.with_columns(pl.lit(0.5).alias("reward"))
    summary = train.train_policy(
        str(tiny_model_dir), {"proposer": flat}, _config(), tmp_path / "ckpt", tmp_path / "w"
    )
    assert summary["copied_previous"] is True and "no trainable group" in summary["reason"]
    assert summary["groups_dropped_zero_variance"] == 4 and summary["steps"] == 0
    original = (tiny_model_dir / "model.safetensors").read_bytes()
    assert (tmp_path / "ckpt" / "model.safetensors").read_bytes() == original


def test_resume_from_trl_checkpoint(tiny_model_dir, text_samples, tmp_path):
    cfg = _config(max_steps=2, save_steps=1, keep_trl_checkpoints=True)
    args = (str(tiny_model_dir), {"proposer": text_samples}, cfg, tmp_path / "ckpt", tmp_path / "w")
    first = train.train_policy(*args)
    trained = _state(tmp_path / "ckpt")
    assert (tmp_path / "w" / "proposer" / "checkpoint-2").exists()
    again = train.train_policy(*args)  # an interrupted job rerun: resumes, nothing left to do
    role = again["roles"]["proposer"]
    assert role["resumed_from"].endswith("checkpoint-2") and role["loss"] == []
    resumed = _state(tmp_path / "ckpt")
    assert first["steps"] == 2 and all(torch.equal(trained[k], resumed[k]) for k in trained)


def test_checkpoint_reloads_and_generates(full_image_run):
    from evovlm.modeling import load_model, load_processor
    from evovlm.processor import ImageOnlyQwenVLProcessor

    _, ckpt = full_image_run
    assert isinstance(load_processor(ckpt), ImageOnlyQwenVLProcessor)
    assert load_model(ckpt, device="cpu") is not None
    engine = make_engine(str(ckpt), "hf")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    [out] = engine.generate(
        [Request(messages, [png_to_image(_png(1))], SamplingParams(n=2, max_tokens=5), seed=1)]
    )
    assert len(out.samples) == 2 and all(len(s.token_ids) >= 1 for s in out.samples)


def test_completions_with_image_placeholder_tokens_are_dropped(tiny_model_dir):
    from evovlm.modeling import load_processor

    processor = load_processor(tiny_model_dir)
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    rows = _rows("a", [0.0, 1.0, 2.0, 3.0]) + _rows("b", [0.0, 1.0, 2.0, 3.0])
    rows[1]["completion_ids"] = [5, pad, 5]
    rows[2]["logprobs"] = [-1.0]  # does not line up with its tokens
    frame = pl.DataFrame(rows, schema_overrides={"image": pl.Binary})
    groups, stats = train.build_groups("solver", frame, processor)
    assert stats.dropped_bad_samples == 2 and stats.dropped_size_mismatch == 1
    assert [g.group_id for g in groups] == ["b"]


def test_train_config_auto_values_are_the_methods_reference():
    mm = train.TrainConfig.from_dict({}, methods.get("mmzero"))
    assert (mm.method, mm.freeze_vision_tower, mm.kl_control) == ("full", False, "fixed")
    evo = train.TrainConfig.from_dict({}, methods.get("evolmm"))
    assert (evo.method, evo.freeze_vision_tower, evo.kl_control) == ("lora", True, "adaptive")
    assert (evo.lora_r, evo.lora_alpha, evo.kl_init_beta, evo.kl_target, evo.kl_rate) == (
        16,
        32,
        0.001,
        0.02,
        0.1,
    )
    assert mm.weight_decay == 0.01 and mm.scale_logits_by_temperature is True
    explicit = train.TrainConfig.from_dict(
        {"method": "full", "freeze_vision_tower": "true"}, methods.get("evolmm")
    )
    assert (explicit.method, explicit.freeze_vision_tower) == ("full", True)
    assert train.TrainConfig.from_dict({"learning_rate": 0}).learning_rate == 0  # control run


def test_adaptive_beta_hand_computed():
    def proportional(*args):
        return train.adaptive_beta(*args, update="proportional")

    assert proportional(0.001, 0.02, 0.02, 0.1) == pytest.approx(0.001)  # on target
    assert proportional(0.001, 0.03, 0.02, 0.1) == pytest.approx(0.001 * 1.05)
    assert proportional(0.001, 0.01, 0.02, 0.1) == pytest.approx(0.001 * 0.95)
    assert proportional(0.001, 1.0, 0.02, 0.1) == pytest.approx(0.0011)  # clipped
    assert proportional(0.001, 0.0, 0.02, 0.1) == pytest.approx(0.0009)


@pytest.fixture(scope="module")
def bf16_model_dir(tiny_model_dir, tmp_path_factory):
    """A bf16 copy of the tiny model (a real base's dtype: Qwen2.5-VL ships bf16)."""
    from evovlm.modeling import load_model, load_processor

    out = tmp_path_factory.mktemp("bf16") / "tiny-bf16"
    load_model(tiny_model_dir, dtype="bfloat16", device="cpu").save_pretrained(out)
    load_processor(tiny_model_dir).save_pretrained(out)
    return out


def _saved(folder) -> dict[str, torch.Tensor]:
    """The tensors as saved (dtype included)."""
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _changed_share(before: dict, after: dict) -> float:
    """Share of the language model's projection weights (every element gets a gradient from
    every step) whose saved value differs from the start."""
    keys = [k for k in before if "visual" not in k and k.endswith("proj.weight")]
    assert keys
    changed = sum(int((before[k].float() != after[k].float()).sum()) for k in keys)
    return changed / sum(before[k].numel() for k in keys)


def test_bf16_base_keeps_small_updates(bf16_model_dir, text_samples, tmp_path):
    """The bf16 update check (issue 28): 4 Adam steps at lr 1e-6 move each weight by about
    4e-6, far below bf16's resolution near a weight of 0.02 (~1e-4). The trainer's fp32 master
    weights hold the updates; saving them back in bf16 (the old default, kept as
    save_dtype='base') rounds almost all of them away."""
    before = _saved(bf16_model_dir)
    assert {v.dtype for v in before.values()} == {torch.bfloat16}
    shares = {}
    for save_dtype in ("float32", "base"):
        train.train_policy(
            str(bf16_model_dir),
            {"proposer": text_samples},
            _config(learning_rate=1e-6, save_dtype=save_dtype),
            tmp_path / save_dtype,
            tmp_path / f"w_{save_dtype}",
        )
        after = _saved(tmp_path / save_dtype)
        shares[save_dtype] = _changed_share(before, after)
        want = torch.float32 if save_dtype == "float32" else torch.bfloat16
        assert {v.dtype for v in after.values()} == {want}
    assert shares["float32"] > 0.95, shares
    assert shares["base"] < 0.5, shares  # the lost updates: the check can fail


def test_kl_reference_of_a_bf16_full_finetune_loads_in_bf16(tmp_path):
    """TRL builds the full fine-tune's KL reference with the policy's dtype, fp32 (the master
    weights): 4 bytes a parameter, 15 GiB of a 3B's 70. Under bf16 mixed precision it is now
    loaded in bf16 (GRPOConfig.model_init_kwargs reaches only the reference); other settings
    are left alone."""
    from evovlm.train.run import grpo_config

    def init_kwargs(**kw):
        cfg = _config(**kw)
        return grpo_config(cfg, "solver", 4, 8, 1.0, tmp_path).model_init_kwargs

    assert init_kwargs(mixed_precision="bf16", beta=0.01) == {"dtype": torch.bfloat16}
    assert init_kwargs(mixed_precision="no", beta=0.01) is None  # fp32 compute: fp32 reference
    assert init_kwargs(mixed_precision="bf16", beta=0.0) is None  # no reference at all
    kept = init_kwargs(mixed_precision="bf16", trl={"model_init_kwargs": {"dtype": "float32"}})
    assert kept == {"dtype": "float32"}  # an explicit train.trl choice wins


def test_learning_rate_zero_changes_no_weight(tiny_model_dir, text_samples, tmp_path):
    """The no-training control: every step runs, no weight changes."""
    cfg = _config(learning_rate=0.0, max_steps=2)
    summary = _train(tiny_model_dir, {"proposer": text_samples}, cfg, tmp_path)
    assert summary["steps"] == 2 and not summary["copied_previous"]
    before, after = _state(tiny_model_dir), _state(tmp_path / "ckpt")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_role_scaled_to_zero_learning_rate_changes_no_weight(
    tiny_model_dir, text_samples, tmp_path
):
    """train.lr_scale multiplies the role's learning rate: the Proposer at factor 0 stays put
    while the same run at factor 1 moves."""
    still = _train(
        tiny_model_dir,
        {"proposer": text_samples},
        _config(learning_rate=5e-3, max_steps=2, lr_scale={"proposer": 0.0, "solver": 2.0}),
        tmp_path,
        ckpt="still",
        work="w1",
    )
    moved = _train(
        tiny_model_dir,
        {"proposer": text_samples},
        _config(learning_rate=5e-3, max_steps=2, lr_scale={"proposer": 1.0}),
        tmp_path,
        ckpt="moved",
        work="w2",
    )
    assert still["steps"] == moved["steps"] == 2
    before = _state(tiny_model_dir)
    after_still, after_moved = _state(tmp_path / "still"), _state(tmp_path / "moved")
    assert all(torch.equal(before[k], after_still[k]) for k in before)
    assert not all(torch.equal(before[k], after_moved[k]) for k in before)


def test_any_other_grpo_option_passes_through_from_train_trl(
    tiny_model_dir, text_samples, tmp_path
):
    """train.trl reaches trl.GRPOConfig as it is: a linear schedule with 4 warm-up steps starts
    below half the learning rate (without the option it starts at the full rate)."""
    runs = {}
    for name, trl_options in (("warm", {"warmup_steps": 4}), ("plain", {})):
        runs[name] = train.train_policy(
            str(tiny_model_dir),
            {"proposer": text_samples},
            _config(learning_rate=1e-3, max_steps=2, lr_scheduler_type="linear", trl=trl_options),
            tmp_path / name,
            tmp_path / f"w_{name}",
        )
    first_lr = {
        name: next(
            h["learning_rate"] for h in run["roles"]["proposer"]["log_history"] if "loss" in h
        )
        for name, run in runs.items()
    }
    assert first_lr["plain"] == pytest.approx(1e-3)
    assert first_lr["warm"] < 0.5e-3


def test_train_trl_options_are_checked_before_any_job():
    from evovlm.config import ConfigError
    from evovlm.experiment import validate_config

    validate_config({"train": {"trl": {"warmup_steps": 2, "adam_beta2": 0.99}}})
    with pytest.raises(ConfigError, match=r"'train.trl.warmup_step'.*did you mean 'warmup_steps'"):
        validate_config({"train": {"trl": {"warmup_step": 2}}})
    with pytest.raises(ConfigError, match=r"'train.trl.beta': evovlm sets this"):
        validate_config({"train": {"trl": {"beta": 0.5}}})


def test_the_options_evovlm_derives_are_real_grpo_options():
    """Every GRPOConfig option evovlm sets itself exists in the installed TRL (the train
    section's declaration in the schema is checked in tests/test_config.py)."""
    import dataclasses

    from trl import GRPOConfig

    grpo_fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert train.config.DERIVED_TRL_OPTIONS <= grpo_fields
