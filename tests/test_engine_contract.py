"""The engine contract, the same tests for both engines (HF and vLLM) on the tiny model.

Every engine must: return n samples per request with token ids and log-probs; give the same
samples for the same seed; report the log-probs the trainer recomputes, log_softmax(logits / T)
of a teacher-forced forward pass of the HF model, at T 1.0 and 0.7 (tolerance: HF 1e-4, the same
fp32 kernels; vLLM 2e-2, other kernels, both in fp32); build the same prompt ids as the HF
processor (training replays them); take image input (the image changes the output); never sample
a vision placeholder token.

The vLLM cases are marked ``vllm`` and run wherever vLLM imports, CPU builds included
(``scripts/test-vllm.sh``, environment ``.venv-vllm``); elsewhere they skip with the reason.
"""

import importlib.util
import os

import pytest
import torch
from PIL import Image, ImageDraw

from evovlm.engines import Request, SamplingParams, make_engine
from evovlm.modeling import load_model, vision_placeholder_ids

HAS_VLLM = importlib.util.find_spec("vllm") is not None
VLLM_MARKS = [
    pytest.mark.vllm,
    pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (scripts/bootstrap.sh --vllm)"),
]
TOLERANCE = {"hf": 1e-4, "vllm": 2e-2}
# Options that fit vLLM on a GPU and on CPU (where the KV cache comes from VLLM_CPU_KVCACHE_SPACE
# and the engine runs eager, see engines/vllm_engine.py).
VLLM_OPTIONS = {"dtype": "float32", "gpu_memory_utilization": 0.3, "max_model_len": 2048}
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(
    scope="module", params=["hf", pytest.param("vllm", marks=VLLM_MARKS)], ids=["hf", "vllm"]
)
def engine(request, tiny_model_dir):
    options = {"hf": {"batch_size": 4, "dtype": "float32"}, "vllm": VLLM_OPTIONS}
    eng = make_engine(str(tiny_model_dir), request.param, **options)
    eng.backend = request.param
    yield eng
    if hasattr(eng, "close"):
        eng.close()


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    """The HF model in fp32, for teacher-forced log-probs."""
    return load_model(tiny_model_dir, dtype="float32")


def _image(color="red"):
    img = Image.new("RGB", (96, 80), "white")
    ImageDraw.Draw(img).rectangle([10, 10, 60, 50], fill=color)
    return img


def _image_request(color="red", n=3, max_tokens=12, seed=11, temperature=1.0, top_p=0.95, top_k=40):
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Shape?"}]}]
    sp = SamplingParams(
        n=n, temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_tokens
    )
    return Request(msgs, [_image(color)], sp, seed=seed)


def _text_request(text="Draw a bar chart.", n=3, seed=12):
    sp = SamplingParams(n=n, temperature=1.0, top_p=0.95, top_k=40, max_tokens=12)
    return Request([{"role": "user", "content": [{"type": "text", "text": text}]}], [], sp, seed)


def test_n_samples_with_ids_and_logprobs(engine):
    outputs = engine.generate([_image_request(), _text_request()])
    assert len(outputs) == 2
    for out in outputs:
        assert len(out.samples) == 3
        assert len({tuple(s.token_ids) for s in out.samples}) > 1  # n samples, not one copied
        for s in out.samples:
            assert 1 <= len(s.token_ids) <= 12
            assert len(s.logprobs) == len(s.token_ids)
            assert all(lp <= 0 for lp in s.logprobs)
            assert s.finish_reason in ("stop", "length")


def test_same_seed_same_samples_other_seed_other_samples(engine):
    first = engine.generate([_image_request(seed=5), _text_request(seed=6)])
    again = engine.generate([_image_request(seed=5), _text_request(seed=6)])
    other = engine.generate([_image_request(seed=7)])
    for a, b in zip(first, again, strict=True):
        assert [s.token_ids for s in a.samples] == [s.token_ids for s in b.samples]
    assert [s.token_ids for s in first[0].samples] != [s.token_ids for s in other[0].samples]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_prompt_ids_are_the_processors_and_logprobs_match_a_forward_pass(
    engine, reference, temperature
):
    """The reported log-probs are log_softmax(logits / T), the quantity TRL's trainer recomputes
    (it divides its logits by the sampling temperature); vLLM's default mode would report T = 1
    values. Top-k/top-p are off: vLLM renormalises over the kept tokens, the trainer does not."""
    req = _image_request(n=2, max_tokens=10, temperature=temperature, top_p=1.0, top_k=0)
    out = engine.generate([req])[0]
    processor = engine.processor
    text = processor.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=req.images, return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == out.prompt_ids
    device = reference.device
    for sample in out.samples:
        ids = torch.tensor([out.prompt_ids + sample.token_ids], device=device)
        mm_types = torch.zeros_like(ids)
        mm_types[:, : len(out.prompt_ids)] = inputs["mm_token_type_ids"].to(device)
        with torch.no_grad():
            logits = reference(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                mm_token_type_ids=mm_types,
                pixel_values=inputs["pixel_values"].to(device, torch.float32),
                image_grid_thw=inputs["image_grid_thw"].to(device),
            ).logits[0]
        n = len(out.prompt_ids)
        logp = torch.log_softmax(logits[n - 1 : -1].float() / temperature, dim=-1).cpu()
        expected = logp.gather(-1, torch.tensor(sample.token_ids)[:, None])[:, 0]
        diff = (expected - torch.tensor(sample.logprobs)).abs().max().item()
        assert diff <= TOLERANCE[engine.backend], f"max |log-prob difference| {diff}"


def test_the_image_is_seen(engine):
    red = engine.generate([_image_request("red", n=1, temperature=0.0)])[0].samples[0]
    blue = engine.generate([_image_request("blue", n=1, temperature=0.0)])[0].samples[0]
    assert red.logprobs != blue.logprobs


def test_vision_placeholders_are_never_sampled(engine):
    never = set(vision_placeholder_ids(engine.processor.tokenizer))
    assert len(never) == 2
    sp = SamplingParams(n=6, temperature=2.0, max_tokens=48)
    requests = [
        Request([{"role": "user", "content": [{"type": "text", "text": f"Say {i}."}]}], [], sp, i)
        for i in range(8)
    ]
    sampled = {t for out in engine.generate(requests) for s in out.samples for t in s.token_ids}
    assert len(sampled) > 50  # a hot random model roams the vocabulary (4096 tokens) ...
    assert not never & sampled  # ... but never draws a placeholder


def test_the_job_log_names_the_engine_that_runs(capsys, monkeypatch):
    import evovlm.engines as engines
    from evovlm.stages import engine_from_config

    monkeypatch.setattr(engines, "vllm_usable", lambda: False)
    engine_from_config("some/model", {"backend": "auto"})
    assert "policy: some/model (engine: hf, engine.backend: auto)" in capsys.readouterr().err
    monkeypatch.setattr(engines, "vllm_usable", lambda: True)
    engine_from_config("some/model", {"backend": "auto"})
    assert "(engine: vllm, engine.backend: auto)" in capsys.readouterr().err
    engine_from_config("some/model", {"backend": "hf"})
    assert "policy: some/model (engine: hf)" in capsys.readouterr().err


def test_vllm_lora_rank_rounds_up_to_a_kernel_rank():
    from evovlm.engines.vllm_engine import vllm_lora_rank

    assert [vllm_lora_rank(r) for r in (1, 4, 8, 9, 16, 17, 300)] == [1, 8, 8, 16, 16, 32, 320]
    with pytest.raises(ValueError, match="rank 600"):
        vllm_lora_rank(600)


def test_an_adapter_of_the_vision_merger_is_told_apart(tmp_path):
    import json

    from evovlm.engines.vllm_engine import adapts_vision

    lm = ["model.language_model.layers.0.self_attn.q_proj"]
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm/adapter_config.json").write_text(json.dumps({"target_modules": lm}))
    (tmp_path / "vis").mkdir()
    merger = [*lm, "model.visual.merger.mlp.0"]
    (tmp_path / "vis/adapter_config.json").write_text(json.dumps({"target_modules": merger}))
    assert not adapts_vision(str(tmp_path / "lm"))
    assert adapts_vision(str(tmp_path / "vis"))


@pytest.mark.parametrize("targets", ["language", "with_merger"])
@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (scripts/bootstrap.sh --vllm)")
def test_vllm_serves_an_adapter_like_its_merged_export(tiny_model_dir, tmp_path, targets):
    """Base + adapter (LoRARequest, with tower/connector LoRA when the merger is adapted) samples
    the same greedy tokens as the merged export, log-probs within the vLLM tolerance."""
    import json

    import polars as pl

    from evovlm import train
    from evovlm.modeling import load_processor
    from tests.test_train import _samples

    patterns = list(
        train.DEFAULT_LORA_TARGETS[:1] if targets == "language" else train.DEFAULT_LORA_TARGETS
    )
    cfg = train.TrainConfig.from_dict(
        {
            "method": "lora",
            "lora_r": 4,
            "lora_alpha": 8,
            "lora_dropout": 0.0,
            "learning_rate": 5e-3,
            "max_steps": 2,
            "per_device_train_batch_size": 8,
            "gradient_checkpointing": False,
            "save_steps": 0,
            "lora_save": "adapter",
            "lora_target_modules": patterns,
        }
    )
    samples = _samples(tiny_model_dir, n_groups=4, size=4, images=False)
    adapter = tmp_path / "adapter"
    train.train_policy(str(tiny_model_dir), {"coder": samples}, cfg, adapter, tmp_path / "w")
    merged = tmp_path / "merged"
    load_model(adapter, device="cpu").save_pretrained(merged)
    load_processor(adapter).save_pretrained(merged)
    request = Request(
        messages=json.loads(pl.Series(samples["prompt"])[0]),
        sampling=SamplingParams(n=1, temperature=0.0, max_tokens=8),  # greedy: one sample
        seed=7,
    )
    outputs = []
    for folder in (adapter, merged):
        engine = make_engine(str(folder), "vllm", vllm=VLLM_OPTIONS)
        outputs.append(engine.generate([request])[0])
        engine.close()
    a, b = outputs
    assert len(a.samples) == 1 and a.samples[0].token_ids
    for x, y in zip(a.samples, b.samples, strict=True):
        assert x.token_ids == y.token_ids
        assert max(abs(p - q) for p, q in zip(x.logprobs, y.logprobs, strict=True)) <= 2e-2


def test_an_overlong_prompt_fails_alone(engine):
    """A prompt longer than vLLM's max_model_len (2048 here) used to abort the whole generate
    call; now its samples come back empty with the reason, and the other requests are served.
    (The HF engine has no context limit of its own: the model's positions bound it.)"""
    if engine.backend != "vllm":
        pytest.skip("max_model_len is a vLLM engine setting")
    from evovlm.engines.vllm_engine import PROMPT_TOO_LONG

    long_text = " ".join(["bar chart of values"] * 1200)
    requests = [_text_request(long_text, n=2, seed=3), _image_request(n=2, seed=4)]
    long, short = engine.generate(requests)
    assert [s.finish_reason for s in long.samples] == [PROMPT_TOO_LONG] * 2
    assert all(s.token_ids == [] and s.logprobs == [] for s in long.samples)
    assert len(short.samples) == 2 and all(s.token_ids for s in short.samples)
    assert short.samples[0].token_ids == engine.generate([requests[1]])[0].samples[0].token_ids


def test_a_batch_larger_than_one_step_keeps_its_seeds(engine):
    """More prompt tokens than one engine step takes (here ~64 x 100): vLLM on CPU with chunked
    prefill split a seeded prompt over two steps and died rewinding its generator ("CPU Generator
    does not use offset"). Each request still gets its own samples, the same as alone."""
    if engine.backend != "vllm":
        pytest.skip("engine steps and chunked prefill are vLLM's")
    requests = [_image_request(("red", "blue")[i % 2], n=2, seed=100 + i) for i in range(64)]
    outputs = engine.generate(requests)
    assert len(outputs) == 64 and all(len(o.samples) == 2 for o in outputs)
    alone = engine.generate([requests[37]])[0]
    assert [s.token_ids for s in alone.samples] == [s.token_ids for s in outputs[37].samples]
