import hashlib

from evovlm.modeling import load_model, load_processor
from evovlm.processor import ImageOnlyQwenVLProcessor
from evovlm.tiny import SPECIAL_TOKENS, TinySpec, build_tiny_model


def _digest(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_two_builds_are_byte_identical(tmp_path, tiny_model_dir):
    again = build_tiny_model(tmp_path / "again")
    assert _digest(again) == _digest(tiny_model_dir)
    assert "model.safetensors" in _digest(again)


def test_different_seed_changes_weights_not_tokenizer(tmp_path, tiny_model_dir):
    other = build_tiny_model(tmp_path / "other", TinySpec(seed=1))
    a, b = _digest(tiny_model_dir), _digest(other)
    assert a["model.safetensors"] != b["model.safetensors"]
    assert a["tokenizer.json"] == b["tokenizer.json"]


def test_loads_like_a_real_checkpoint(tiny_model_dir):
    processor = load_processor(tiny_model_dir)
    assert isinstance(processor, ImageOnlyQwenVLProcessor)
    assert processor.image_processor is not None
    tok = processor.tokenizer
    for name in SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(name) != tok.unk_token_id
        assert len(tok.encode(name, add_special_tokens=False)) == 1
    model = load_model(tiny_model_dir)
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")


def test_chat_template_comes_from_the_model_and_expands_images(tiny_model_dir):
    from PIL import Image

    processor = load_processor(tiny_model_dir)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Count?"}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")
    assert "<|vision_start|><|image_pad|><|vision_end|>Count?<|im_end|>" in text
    batch = processor(
        text=[text], images=[Image.new("RGB", (128, 128), "white")], return_tensors="pt"
    )
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    n_image_tokens = int((batch["input_ids"] == image_id).sum())
    assert n_image_tokens == int(batch["image_grid_thw"].prod()) // 4  # merge 2x2
    assert n_image_tokens > 1
