"""The embedded default model: a tiny, randomly initialised Qwen2.5-VL built offline.

Nothing is downloaded. A byte-level BPE tokenizer is trained on a fixed corpus shipped in
the package (``data/tokenizer_corpus.txt``), the model is initialised from a seeded RNG, and
everything is written with ``save_pretrained`` so the folder loads through exactly the same
code path as a real checkpoint (``AutoModelForImageTextToText`` / ``load_processor``).
Same spec, same bytes: two builds give identical files.

Why Qwen2.5-VL and not Qwen3-VL: both are in transformers 5.23, but Qwen2.5-VL is the family
TRL 1.16's GRPO VLM path was measured with here (docs/stack.md), and its processor has an
image-only PIL image processor; the engines and trainer only use the Auto classes, so a real
Qwen3-VL checkpoint works unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from dataclasses import asdict
from importlib import resources
from pathlib import Path

from evovlm.config import schema_dataclass, section_from_dict

# The special tokens Qwen-VL's modelling code and chat template expect.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2-VL family chat template (our own Jinja; same token layout as the released models):
# string or list content, {"type": "image"} items become the vision placeholder span.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@schema_dataclass("tiny", frozen=True)
class TinySpec:
    """Size and seed of the embedded model (config key ``tiny``). Keys, defaults and help are
    declared once, in the schema's ``tiny`` section."""

    @classmethod
    def from_dict(cls, d: dict | None) -> TinySpec:
        return section_from_dict(cls, d, "tiny")


def corpus_text() -> str:
    return resources.files("evovlm").joinpath("data/tokenizer_corpus.txt").read_text("utf-8")


def build_tokenizer(spec: TinySpec):
    """Train a byte-level BPE on the shipped corpus and wrap it as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The corpus is split into lines so training order is fixed; tokenizers' BPE trainer is
    # deterministic for a fixed input sequence.
    tok.train_from_iterator(corpus_text().splitlines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=8192,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )


def build_image_processor(spec: TinySpec):
    from transformers import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        min_pixels=spec.min_pixels,
        max_pixels=spec.max_pixels,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )


def build_model(spec: TinySpec, tokenizer):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    head_dim = spec.hidden_size // spec.num_heads
    half = head_dim // 2  # mrope_section must sum to head_dim / 2
    t = half // 4
    mrope = [half - 2 * ((half - t) // 2), (half - t) // 2, (half - t) // 2]
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": spec.hidden_size,
            "intermediate_size": spec.intermediate_size,
            "num_hidden_layers": spec.num_layers,
            "num_attention_heads": spec.num_heads,
            "num_key_value_heads": spec.num_heads,
            "max_window_layers": spec.num_layers,
            "max_position_embeddings": 8192,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": mrope,
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": spec.vision_depth,
            "hidden_size": spec.vision_hidden_size,
            "intermediate_size": spec.vision_hidden_size * 2,
            "num_heads": max(1, spec.vision_hidden_size // 32),
            "out_hidden_size": spec.hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": list(range(spec.vision_depth)),
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(spec.seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    return model


def build_tiny_model(out_dir: str | os.PathLike, spec: TinySpec | None = None) -> Path:
    """Build the embedded model into ``out_dir`` (written to a temp folder, then renamed)."""
    import shutil

    import torch

    from evovlm.processor import ImageOnlyQwenVLProcessor

    spec = spec or TinySpec()
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    random.seed(spec.seed)
    torch.use_deterministic_algorithms(True)
    tokenizer = build_tokenizer(spec)
    processor = ImageOnlyQwenVLProcessor(
        image_processor=build_image_processor(spec),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    model = build_model(spec, tokenizer)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    (tmp / "evovlm_tiny.json").write_text(json.dumps(asdict(spec), indent=2, sort_keys=True) + "\n")
    from evovlm.hfio import honour_umask

    honour_umask(tmp)  # safetensors writes its files 0600
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def main(argv: list[str]) -> int:
    from dataclasses import fields

    defaults = ", ".join(f"{f.name}={f.default}" for f in fields(TinySpec))
    parser = argparse.ArgumentParser(
        prog="evovlm build-tiny",
        description=(
            "Build the embedded tiny Qwen2.5-VL model (random weights; a BPE tokenizer trained on "
            "the corpus that ships inside the evovlm package) into OUT_DIR. Nothing is "
            "downloaded; the same spec gives the same bytes. The workflow builds it as "
            "resources/tiny-base (rule build_tiny_model, config key 'tiny')."
        ),
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (created)")
    parser.add_argument(
        "--spec",
        default="{}",
        help=f"JSON object overriding the model's size and seed; defaults: {defaults}",
    )
    args = parser.parse_args(argv)
    path = build_tiny_model(args.out_dir, TinySpec.from_dict(json.loads(args.spec)))
    print(path)
    return 0


def write_corpus(path: str | os.PathLike, n_items: int = 80, seed: int = 9001) -> None:
    """Regenerate the shipped tokenizer corpus (a development tool, not part of the build).

    The corpus is every role's prompt and reference output for ``n_items`` procedural items
    (a seed the warm-up does not use), so the BPE merges cover the formats the tiny model reads
    and writes. The file is committed; builds read the file, never this function.
    """
    from evovlm import prompts, synth

    lines: list[str] = []
    topics = list(prompts.DEFAULT_SEED_TOPICS)
    for i, item in enumerate(synth.generate_items(n_items, seed=seed)):
        fields_ = synth.item_to_proposal_fields(item)
        lines.append(prompts.render_text("proposer", topic=topics[i % len(topics)]))
        lines.append(prompts.format_proposal(fields_))
        lines.append(prompts.render_text("coder_svg", **fields_))
        lines.append(prompts.format_code(item.svg, "svg"))
        lines.append(prompts.render_text("coder_python", **fields_))
        lines.append(prompts.format_code(item.python, "python"))
        for kind in ("easy", "hard"):
            question = getattr(item, f"{kind}_question")
            lines.append(prompts.render_text("solver", question=question))
            lines.append(
                prompts.format_solver(
                    "Read the values from the picture.", getattr(item, f"{kind}_answer")
                )
            )
            lines.append(prompts.render_text("evolmm_solver", question=question))
            lines.append(prompts.format_evolmm_answer("", getattr(item, f"{kind}_answer")))
        lines.append(prompts.render_text("evolmm_proposer"))
        lines.append(
            prompts.format_evolmm_question(item.hard_question, "It needs values from the picture.")
        )
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# The package files each embedded build reads: its recipe, with the config it is given.
RECIPE_FILES = {
    "tiny-base": ["tiny.py", "data/tokenizer_corpus.txt"],
    "tiny-warm": [
        "warmup.py",
        "synth.py",
        "prompts.py",
        "methods/mmzero/templates",
        "methods/evolmm/templates",
    ],
}


def recipe_digest(kind: str, config: dict) -> str:
    """A 12-hex-digit content hash of what builds ``kind`` (``tiny-base`` or ``tiny-warm``): the
    config it is built from and the source files that build it. Same digest, same build: the key
    of a build in a shared resources folder (config key ``resources_dir``)."""
    import hashlib

    package = resources.files("evovlm")
    digest = hashlib.sha256()
    if kind == "tiny-warm":
        digest.update(recipe_digest("tiny-base", config).encode())
        recipe = {"warmup": config.get("warmup"), "method": config.get("method")}
    else:
        recipe = {"tiny": config.get("tiny")}
    digest.update(json.dumps(recipe, sort_keys=True, default=str).encode())
    for name in RECIPE_FILES[kind]:
        node = package.joinpath(name)
        files = sorted(node.iterdir(), key=lambda p: p.name) if node.is_dir() else [node]
        for item in files:
            digest.update(item.name.encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()[:12]
