import pytest
import torch
from PIL import Image, ImageDraw

from evovlm.engines import Request, SamplingParams, make_engine, sample_seed


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return make_engine(str(tiny_model_dir), "hf", hf={"batch_size": 4})


def _image(color="red"):
    img = Image.new("RGB", (96, 80), "white")
    ImageDraw.Draw(img).rectangle([10, 10, 60, 50], fill=color)
    return img


def _requests(n=3, max_tokens=12, temperature=1.0):
    sp = SamplingParams(n=n, temperature=temperature, top_p=0.95, top_k=40, max_tokens=max_tokens)
    return [
        Request(
            [
                {
                    "role": "user",
                    "content": [{"type": "image"}, {"type": "text", "text": "What shape?"}],
                }
            ],
            [_image()],
            sp,
            seed=11,
        ),
        Request(
            [{"role": "user", "content": [{"type": "text", "text": "Draw a bar chart."}]}],
            [],
            sp,
            seed=12,
        ),
        Request(
            [{"role": "user", "content": "A longer text-only prompt about a pie chart"}],
            [],
            sp,
            seed=13,
        ),
    ]


def test_auto_picks_hf_without_gpu(tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("GPU present")
    assert type(make_engine(str(tiny_model_dir), "auto")).__name__ == "HFEngine"


def test_bad_backend_is_a_clear_error(tiny_model_dir):
    with pytest.raises(ValueError, match="engine.backend"):
        make_engine(str(tiny_model_dir), "tpu")


def test_n_distinct_samples_with_ids_and_logprobs(engine):
    outputs = engine.generate(_requests())
    assert len(outputs) == 3
    for out in outputs:
        assert len(out.samples) == 3
        assert len({tuple(s.token_ids) for s in out.samples}) == 3  # distinct samples
        for s in out.samples:
            assert 1 <= len(s.token_ids) <= 12
            assert len(s.logprobs) == len(s.token_ids)
            assert all(lp <= 0 for lp in s.logprobs)
            assert s.finish_reason in ("stop", "length")
        assert out.prompt_ids and all(isinstance(t, int) for t in out.prompt_ids)


def test_same_seed_same_samples_whatever_the_batch(engine):
    reqs = _requests()
    together = engine.generate(reqs)
    alone = engine.generate([reqs[1]])
    again = engine.generate(reqs)
    assert [s.token_ids for s in alone[0].samples] == [s.token_ids for s in together[1].samples]
    for a, b in zip(together, again, strict=True):
        assert [s.token_ids for s in a.samples] == [s.token_ids for s in b.samples]
        assert [s.text for s in a.samples] == [s.text for s in b.samples]


def test_mixed_sampling_settings_in_one_batch(engine):
    """Rows are warped in groups of equal settings; a request in a batch of other settings
    (another temperature, top-k, top-p, greedy) gets the samples it gets alone."""
    settings = [
        SamplingParams(n=2, temperature=1.0, top_p=0.95, top_k=40, max_tokens=10),
        SamplingParams(n=2, temperature=0.7, top_p=1.0, top_k=5, max_tokens=10),
        SamplingParams(n=1, temperature=0.0, max_tokens=10),
        SamplingParams(n=2, temperature=1.3, top_p=0.5, top_k=0, max_tokens=6),
    ]
    reqs = []
    for k, sp in enumerate(settings):
        for req in _requests()[:2]:
            reqs.append(Request(req.messages, req.images, sp, seed=100 + len(reqs) + k))
    together = engine.generate(reqs)
    for req, out in zip(reqs, together, strict=True):
        alone = engine.generate([req])[0]
        assert [s.token_ids for s in out.samples] == [s.token_ids for s in alone.samples]
        assert all(len(s.token_ids) <= req.sampling.max_tokens for s in out.samples)
    flat = [s.token_ids for out in together[:4] for s in out.samples]
    assert len({tuple(t) for t in flat}) > 1  # sampled rows differ


def test_other_seed_other_samples(engine):
    reqs = _requests()
    first = engine.generate(reqs[:1])[0]
    reqs[0].seed = 999
    second = engine.generate(reqs[:1])[0]
    assert [s.token_ids for s in first.samples] != [s.token_ids for s in second.samples]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_token_ids_and_logprobs_match_a_forward_pass(engine, temperature):
    """Log-probs are of the sampled distribution: log_softmax(logits / temperature), before
    top-k/top-p (what the trainer recomputes with scale_logits_by_temperature)."""
    req = _requests(n=2, max_tokens=10, temperature=temperature)[0]
    out = engine.generate([req])[0]
    processor, model = engine.processor, engine.model
    text = processor.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=req.images, return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == out.prompt_ids
    for sample in out.samples:
        ids = torch.tensor([out.prompt_ids + sample.token_ids])
        # mm_token_type_ids marks image tokens; the multimodal rope positions depend on it.
        mm_types = torch.zeros_like(ids)
        mm_types[:, : len(out.prompt_ids)] = inputs["mm_token_type_ids"]
        with torch.no_grad():
            logits = (
                model(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    mm_token_type_ids=mm_types,
                    pixel_values=inputs["pixel_values"],
                    image_grid_thw=inputs["image_grid_thw"],
                )
                .logits[0]
                .float()
            )
        n = len(out.prompt_ids)
        logp = torch.log_softmax(logits[n - 1 : -1] / temperature, dim=-1)
        expected = logp.gather(-1, torch.tensor(sample.token_ids)[:, None])[:, 0]
        assert torch.allclose(expected, torch.tensor(sample.logprobs), atol=1e-4)


def test_greedy_is_deterministic_and_image_matters(engine):
    sp = SamplingParams(n=1, temperature=0.0, max_tokens=8)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}]
    a = engine.generate([Request(msgs, [_image("red")], sp, seed=1)])[0].samples[0]
    b = engine.generate([Request(msgs, [_image("red")], sp, seed=2)])[0].samples[0]
    assert a.token_ids == b.token_ids  # greedy ignores the seed
    assert (
        a.logprobs
        != engine.generate([Request(msgs, [_image("blue")], sp, seed=1)])[0].samples[0].logprobs
    )


def test_sample_seed_is_stable():
    assert sample_seed(1, 0) == sample_seed(1, 0)
    assert sample_seed(1, 0) != sample_seed(1, 1)
    assert 0 <= sample_seed(123, 4) < 2**63


def test_vision_placeholders_are_never_sampled(engine):
    from evovlm.modeling import vision_placeholder_ids

    never = set(vision_placeholder_ids(engine.processor.tokenizer))
    assert len(never) == 2
    requests = [
        Request(
            messages=[{"role": "user", "content": [{"type": "text", "text": f"Say {i}."}]}],
            sampling=SamplingParams(n=8, temperature=2.0, max_tokens=64),
            seed=i,
        )
        for i in range(12)
    ]

    def sampled():
        return [t for out in engine.generate(requests) for s in out.samples for t in s.token_ids]

    assert not never.intersection(sampled())
    # Control: the same requests without the mask do draw placeholders from the random model.
    saved, engine.never_ids = engine.never_ids, []
    try:
        assert never.intersection(sampled())
    finally:
        engine.never_ids = saved
