"""Format warm-up of the embedded tiny model: a short supervised fine-tune (TRL's SFTTrainer)
on procedurally generated examples in every role's exact prompt and output format.

A randomly initialised model never closes a tag, so nothing would parse, render or train.
After this warm-up the tiny model *speaks the formats* (six Proposer tags, fenced SVG and
matplotlib programs that render, ``<think>``/``\\boxed{}`` answers about rendered images,
EvoLMM's question and answer tags), so every stage of the loop has real data on a laptop. It
does not learn visual reasoning: the examples' answers are right, but a model this small
mostly copies surface patterns.

Deterministic on CPU: fixed item seed, fixed trainer seed, single-process data loading.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

from evovlm import methods, prompts, synth
from evovlm.config import schema_dataclass, section_defaults, section_from_dict
from evovlm.methods import Method, SolverFormat


@schema_dataclass("warmup", frozen=True)
class WarmupConfig:
    """Config section ``warmup`` (used only when model.base is 'embedded'). Keys, defaults and help are
    declared once, in the schema's ``warmup`` section."""

    @classmethod
    def from_dict(cls, d: dict | None) -> WarmupConfig:
        return section_from_dict(cls, d, "warmup")

    def see_option(self, key: str) -> Any:
        """``warmup.see.<key>``, the schema's default where the section leaves it out."""
        return self.see.get(key, section_defaults("warmup.see")[key])


REASONING = {
    "easy": "The answer can be read directly from the picture.",
    "hard": "Read the needed values from the picture, then compute step by step.",
}


def _user(role: str, **kw: Any) -> list[dict]:
    return prompts.render_messages(role, **kw)


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def build_examples(
    n_items: int, seed: int, roles: tuple[str, ...], render_cfg=None
) -> list[dict[str, Any]]:
    """Prompt/completion examples for ``roles`` (built-in prompt templates: a method's
    ``warmup_roles``), one per role per synth item.

    Image roles carry the item's SVG rendered by the project's renderer.
    """
    from PIL import Image

    from evovlm.render import RenderConfig, render_svg

    if not roles:
        return []
    render_cfg = render_cfg or RenderConfig(width=224, height=224)
    rng = random.Random(seed)
    topics = list(prompts.DEFAULT_SEED_TOPICS)
    examples: list[dict[str, Any]] = []
    for item in synth.generate_items(n_items, seed=seed):
        fields_ = synth.item_to_proposal_fields(item)
        topic = rng.choice(topics)
        if "proposer" in roles:
            examples.append(
                {
                    "role": "proposer",
                    "prompt": _user("proposer", topic=topic),
                    "completion": _assistant(prompts.format_proposal(fields_)),
                    "images": [],
                }
            )
        for language, code in (("svg", item.svg), ("python", item.python)):
            if f"coder_{language}" in roles:
                examples.append(
                    {
                        "role": f"coder_{language}",
                        "prompt": _user(f"coder_{language}", **fields_),
                        "completion": _assistant(prompts.format_code(code, language)),
                        "images": [],
                    }
                )
        if not any(r in roles for r in ("solver", "evolmm_proposer", "evolmm_solver")):
            continue
        rendered = render_svg(item.svg, render_cfg)
        if not rendered.ok:  # the generator's own SVG must render; skip rather than train on it
            continue
        import io

        image = Image.open(io.BytesIO(rendered.png)).convert("RGB")
        kind = rng.choice(["easy", "hard"])
        question, answer = getattr(item, f"{kind}_question"), getattr(item, f"{kind}_answer")
        image_examples = {
            "solver": (
                _user("solver", question=question),
                prompts.format_solver(REASONING[kind], answer),
            ),
            "evolmm_proposer": (
                _user("evolmm_proposer"),
                prompts.format_evolmm_question(
                    question, "It is answered by values in the picture."
                ),
            ),
            "evolmm_solver": (
                _user("evolmm_solver", question=question),
                prompts.format_evolmm_answer("", answer),
            ),
        }
        for role, (prompt, completion) in image_examples.items():
            if role in roles:
                examples.append(
                    {
                        "role": role,
                        "prompt": prompt,
                        "completion": _assistant(completion),
                        "images": [image],
                    }
                )
    return examples


def build_see_examples(
    n_items: int,
    seed: int,
    solver: SolverFormat,
    kinds: list[str] | tuple[str, ...] = (),
    render_cfg=None,
) -> list[dict[str, Any]]:
    """One example of the method's ``solver`` per simple-picture item
    (:func:`evovlm.synth.generate_see_items`): the question in the Solver's prompt, the one-word
    answer in its output format, the picture
    rendered by the project's renderer. Each example carries its ``kind``; its image is PNG
    bytes (``{"bytes", "path"}``, what a ``datasets.Image`` column stores): tens of thousands of
    decoded pictures would not fit in memory."""
    from evovlm.render import RenderConfig, render_svg

    render_cfg = render_cfg or RenderConfig(width=224, height=224)
    examples = []
    for item in synth.generate_see_items(n_items, seed=seed, kinds=kinds):
        rendered = render_svg(item.svg, render_cfg)
        if not rendered.ok:  # the generator's own SVG must render
            raise RuntimeError(f"{item.item_id}: simple picture failed to render: {rendered.error}")
        examples.append(
            {
                "role": solver.template,
                "kind": item.kind,
                "answer": item.answer,
                "prompt": _user(solver.template, question=item.question),
                "completion": _assistant(solver.write(REASONING["easy"], item.answer)),
                "images": [_png_ref(rendered.png)],
            }
        )
    return examples


def build_see_proposal_examples(
    n_items: int, seed: int, roles: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Simple-picture proposals for ``roles``' Proposer and SVG Coder, one pair per item
    (:func:`evovlm.synth.generate_see_items`): the seed topic names the picture's kind, so the
    Proposer learns that its topic matters (the chart examples draw theirs at random)."""
    examples: list[dict[str, Any]] = []
    for item in synth.generate_see_items(n_items, seed=seed):
        fields_ = synth.see_proposal_fields(item)
        if "proposer" in roles:
            examples.append(
                {
                    "role": "proposer",
                    "prompt": _user("proposer", topic=synth.see_topic(item)),
                    "completion": _assistant(prompts.format_proposal(fields_)),
                    "images": [],
                }
            )
        if "coder_svg" in roles:
            examples.append(
                {
                    "role": "coder_svg",
                    "prompt": _user("coder_svg", **fields_),
                    "completion": _assistant(prompts.format_code(item.svg, "svg")),
                    "images": [],
                }
            )
    return examples


def _png_ref(image) -> dict[str, Any]:
    """An RGB PNG as a ``datasets.Image`` value, from PNG bytes or a PIL image."""
    import io

    from PIL import Image

    if isinstance(image, bytes | bytearray):
        image = Image.open(io.BytesIO(image))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _repeat(examples: list[dict], passes: float, seed: int) -> list[dict]:
    """``examples`` repeated ``passes`` times (a fraction: a seeded sample of the rest)."""
    whole = int(passes)
    rest = random.Random(seed).sample(examples, round((passes - whole) * len(examples)))
    return examples * whole + rest


def warmup_examples(cfg: WarmupConfig, method: Method) -> list[dict[str, Any]]:
    """The method's format examples: its ``warmup_roles``, then its own ``warmup_examples``."""
    examples = build_examples(cfg.items, cfg.seed, method.warmup_roles)
    if method.warmup_examples is not None:
        examples += method.warmup_examples(cfg.items, cfg.seed)
    proposals = int(cfg.see_option("proposals"))
    if proposals:  # another seed than the pictures': other pictures
        examples += build_see_proposal_examples(proposals, cfg.seed + 1, method.warmup_roles)
    return examples


def see_examples(cfg: WarmupConfig, method: Method) -> list[dict[str, Any]]:
    """``warmup.see``'s simple pictures as examples of the method's Solver."""
    if method.solver is None:
        raise ValueError(f"warmup.see.items: method {method.name!r} has no Solver to teach")
    kinds = tuple(cfg.see_option("kinds"))
    return build_see_examples(int(cfg.see_option("items")), cfg.seed, method.solver, kinds)


def as_text(examples: list[dict], processor, whole_reply: float, seed: int) -> list[dict]:
    """The examples as plain-text prompt/completion pairs, the chat template applied as TRL
    applies it (the prompt with the generation prompt; the completion the rest). A simple
    picture's loss is on its answer's tokens (and the reply's end) only: its reply up to the
    answer joins the prompt. A seeded share ``whole_reply`` of them keeps the whole reply, so
    that the phase also keeps the Solver writing its format, which an answer-only example never
    trains."""
    rng = random.Random(seed)
    out = []
    for ex in examples:
        prompt = processor.apply_chat_template(
            ex["prompt"], tokenize=False, add_generation_prompt=True
        )
        full = processor.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=False)
        if not full.startswith(prompt):
            raise ValueError(f"{ex['role']}: the chat template does not extend the prompt")
        cut = len(prompt)
        if ex.get("answer") and rng.random() >= whole_reply:
            reply = ex["completion"][0]["content"][0]["text"]
            cut = full.rindex(reply) + reply.rindex(ex["answer"])
        out.append({**ex, "prompt": full[:cut], "completion": full[cut:]})
    return out


def drop_too_long(examples: list[dict], processor, max_length: int) -> tuple[list[dict], int]:
    """(the examples within ``max_length`` tokens, how many were dropped). Dropped rather than
    truncated: a truncated program or tag block would teach the model never to close it."""
    tok = processor.tokenizer
    image_tokens = 64

    def n_tokens(ex):
        text = processor.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=False)
        return len(tok(text, add_special_tokens=False)["input_ids"]) + image_tokens * len(
            ex["images"]
        )

    lengths = [n_tokens(ex) for ex in examples]
    kept = [ex for ex, n in zip(examples, lengths, strict=True) if n <= max_length]
    return kept, sum(n > max_length for n in lengths)


def _dataset(examples: list[dict], see: bool):
    """The examples as a ``datasets.Dataset`` of prompt, completion and images."""
    import datasets
    from datasets import Dataset

    if see:
        # Every picture as PNG bytes in an Image column: decoded only when a batch needs it.
        for ex in examples:
            ex["images"] = [im if isinstance(im, dict) else _png_ref(im) for im in ex["images"]]
    dataset = Dataset.from_list(
        [{k: ex[k] for k in ("prompt", "completion", "images")} for ex in examples]
    )
    if see:
        dataset = dataset.cast_column("images", datasets.List(datasets.Image()))
    return dataset


def _sft_config(cfg: WarmupConfig, output_dir: Path, see: bool):
    """The format phase's trainer arguments, or with ``see`` the picture phase's: one pass over
    distinct pictures at ``warmup.see``'s rate and batch, cosine decay."""
    import torch
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=1 if see else cfg.epochs,
        per_device_train_batch_size=cfg.see_option("batch_size") if see else cfg.batch_size,
        learning_rate=cfg.see_option("learning_rate") if see else cfg.learning_rate,
        lr_scheduler_type="cosine" if see else cfg.lr_scheduler_type,
        warmup_steps=0,
        max_length=cfg.max_length + 64,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        # A few-MB model: activations are small, recomputing them only costs time.
        gradient_checkpointing=False,
    )


def _summary(examples, dropped, result, trainer, seconds: float) -> dict:
    roles: dict[str, int] = {}
    for ex in examples:
        roles[ex["role"]] = roles.get(ex["role"], 0) + 1
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "examples": len(examples),
        "examples_dropped_too_long": dropped,
        "examples_per_role": roles,
        "steps": int(result.global_step),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "seconds": round(seconds, 1),
    }


def _save(model, processor, base: Path, tmp: Path, out: Path, summary: dict) -> None:
    """Save the model, its processor and the summary in ``tmp``, then move it to ``out``."""
    from evovlm.hfio import honour_umask

    model.eval()
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    for name in ("evovlm_tiny.json",):
        if (base / name).exists():
            shutil.copy(base / name, tmp / name)
    (tmp / "evovlm_warmup.json").write_text(json.dumps(summary, indent=2) + "\n")
    honour_umask(tmp)  # safetensors writes its files 0600
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def per_example_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy averaged over each example's own completion tokens, then over the batch's
    examples: a one-word answer weighs as much as a 500-token program (the trainer's default,
    a mean over the batch's tokens, gives it about 1%)."""
    import torch.nn.functional as F

    logits, target = outputs.logits[:, :-1].float(), labels[:, 1:]
    tokens = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
    mask = target != -100
    per_example = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1)
    return per_example[mask.any(1)].mean()


def _train(model, processor, cfg: WarmupConfig, examples, dropped: int, tmp, see: bool, callbacks):
    """One SFT phase over ``examples`` (within ``warmup.max_length``; ``dropped`` were not); its
    summary. The picture phase weighs every example the same (:func:`per_example_loss`)."""
    from trl import SFTTrainer

    start = time.perf_counter()
    if see:
        examples = as_text(examples, processor, cfg.see_option("whole_reply"), cfg.seed)
    trainer = SFTTrainer(
        model=model,
        args=_sft_config(cfg, tmp / "_trainer", see),
        train_dataset=_dataset(examples, see),
        processing_class=processor,
        callbacks=callbacks,
        compute_loss_func=per_example_loss if see else None,
    )
    result = trainer.train()
    shutil.rmtree(tmp / "_trainer", ignore_errors=True)
    summary = _summary(examples, dropped, result, trainer, time.perf_counter() - start)
    if see:
        kinds = [ex.get("kind") for ex in examples]
        summary["examples_per_kind"] = {k: kinds.count(k) for k in synth.SEE_KINDS if k in kinds}
    return summary


def warmup_model(
    base: str | Path,
    out: str | Path,
    cfg: WarmupConfig,
    method: str = "mmzero",
    callbacks: list | None = None,
) -> dict[str, Any]:
    """SFT ``base`` on ``method``'s format examples, then (with ``warmup.see``) on its Solver's
    simple pictures, and save a plain HF folder at ``out`` (atomic). ``callbacks``: transformers
    ``TrainerCallback``s of the last phase.

    Two phases, not one mixed pass: the trainer averages the loss over a batch's tokens, so a
    batch holding one 500-token program gave its pictures' one-word answers about 1% of the
    gradient (and the whole reply's fixed text drowned the answer's few tokens again)."""
    import torch

    from evovlm.modeling import load_model, load_processor

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(cfg.seed)
    processor = load_processor(base)
    model = load_model(
        base, dtype="float32", device="cpu" if not torch.cuda.is_available() else None
    )
    model.train()
    m = methods.get(method)
    see = bool(int(cfg.see_option("items")))
    fmt, dropped = drop_too_long(warmup_examples(cfg, m), processor, cfg.max_length)
    summary = _train(model, processor, cfg, fmt, dropped, tmp, False, None if see else callbacks)
    summary = {"config": dataclasses.asdict(cfg), **summary}
    if see:
        # The format examples again (those that fit) beside the pictures, ``warmup.see.replay``
        # passes of them, so that the roles without pictures keep their formats.
        pictures, dropped = drop_too_long(see_examples(cfg, m), processor, cfg.max_length)
        pictures += _repeat(fmt, float(cfg.see_option("replay")), cfg.seed)
        summary["see"] = _train(model, processor, cfg, pictures, dropped, tmp, True, callbacks)
    _save(model, processor, Path(base), tmp, out, summary)
    return summary
