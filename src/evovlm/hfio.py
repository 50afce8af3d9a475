"""Outputs that load the Hugging Face way: Parquet features metadata, model cards, processors.

- Parquet (defined in :mod:`evovlm.schema`, which writes the tables): :func:`with_features`
  puts the ``datasets`` features of a table in the schema metadata key ``huggingface``, so
  ``datasets.load_dataset("parquet", ...)`` decodes image columns (the ``{"bytes", "path"}``
  struct) to PIL images instead of dicts.
- Checkpoints: :func:`prepare_checkpoint` and :func:`write_model_card` write a model card (``README.md``) and, for a Qwen2.5-VL
  processor, an image-only processor as custom code, so that ``AutoProcessor`` and
  ``pipeline("image-text-to-text")`` load the folder on a stack without torchvision (pass
  ``trust_remote_code=True`` there; with torchvision the stock processor loads without it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# The Parquet side (features metadata, file modes) lives with the table schemas, which write it;
# re-exported here, where it has always been looked up.
from evovlm.schema import feature, honour_umask, with_features  # noqa: F401

# ---------------------------------------------------------------------------------------------
# Checkpoints

PROCESSOR_MODULE = "processing_evovlm"
_PROCESSOR_CODE = '''"""Image-only Qwen2.5-VL processor (written by evovlm).

The stock Qwen2.5-VL processor also builds a video processor, which needs torchvision. This one
is the stock processor without the video part, so the folder loads on a CPU stack without
torchvision: ``AutoProcessor.from_pretrained(path, trust_remote_code=True)``.
"""

from transformers import Qwen2_5_VLProcessor


class ImageOnlyQwenVLProcessor(Qwen2_5_VLProcessor):
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)
'''

# Files a workflow engine leaves in an output folder; never part of a model.
WORKFLOW_FILES = (".snakemake_timestamp",)


def add_processor_code(folder: str | os.PathLike) -> bool:
    """Write the image-only processor module and its ``auto_map`` (Qwen2.5-VL processors only)."""
    folder = Path(folder)
    config_path = folder / "processor_config.json"
    if not config_path.exists():
        return False
    config = json.loads(config_path.read_text())
    if config.get("processor_class") != "Qwen2_5_VLProcessor":
        return False
    (folder / f"{PROCESSOR_MODULE}.py").write_text(_PROCESSOR_CODE)
    config["auto_map"] = {"AutoProcessor": f"{PROCESSOR_MODULE}.ImageOnlyQwenVLProcessor"}
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return True


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def model_card(info: dict[str, Any]) -> str:
    """The model card (README.md) of a checkpoint from ``info``.

    Keys: base_model, method, lineage, roles, round, train (settings), summary (the lineage's
    training summary), rates (this round's rates; may be empty when written before the round is
    summarised).
    """
    base = info.get("base_model") or "unknown"
    roles = ", ".join(info.get("roles") or [info.get("lineage", "?")])
    summary = info.get("summary") or {}
    adapter_of = info.get("adapter_base")  # an adapter folder: the base it applies to
    front = [
        "---",
        f"library_name: {'peft' if adapter_of else 'transformers'}",
        "pipeline_tag: image-text-to-text",
        "tags: [evovlm, grpo, self-play, " + str(info.get("method", "")) + "]",
    ]
    named = str(adapter_of or base)
    hub_id = named.count("/") == 1 and not named.startswith((".", "/", "~"))
    if hub_id and not Path(named).exists():
        front.append(f"base_model: {named}")  # a hub id; local folders are named in the text
    front.append("---")
    lines = [
        *front,
        "",
        f"# evovlm {info.get('method', '')} round {info.get('round', '?')}: "
        f"{info.get('lineage', '?')} policy",
        "",
        f"Trained by self-play with evovlm ({info.get('method', '')}), GRPO through TRL.",
        "",
        f"- Base model: `{base}`",
        f"- Started from: `{summary.get('policy', base)}`",
        f"- Method: {info.get('method', '')}; lineage `{info.get('lineage')}` (roles: {roles})",
        f"- Round: {info.get('round')}",
        f"- Steps: {summary.get('steps', 0)}; groups trained: {summary.get('groups_trained', 0)} "
        f"of {summary.get('groups_total', 0)}",
    ]
    if summary.get("copied_previous"):
        lines.append(
            f"- Not trained this round; a copy of the previous policy ({summary.get('reason')})"
        )
    lines += ["", "## Training settings", "", "| key | value |", "|---|---|"]
    for key, value in sorted((info.get("train") or {}).items()):
        lines.append(f"| {key} | {_fmt(value)} |")
    rates = info.get("rates") or {}
    if rates:
        lines += ["", "## This round's rates", "", "| rate | value |", "|---|---|"]
        for key, value in rates.items():
            lines.append(f"| {key} | {_fmt(value)} |")
    use = _adapter_use(named, local=not hub_id or Path(named).exists()) if adapter_of else None
    lines += ["", "## Use", "", *(use or _model_use())]
    prompts = info.get("prompts") or {}
    if prompts:
        lines += [
            "",
            "## Prompt format",
            "",
            "Each role was trained on one prompt, given through the chat template shipped here "
            "(`processor.apply_chat_template(messages, add_generation_prompt=True)`). The text "
            "the model sees, with `{...}` for the fields filled in per sample:",
        ]
        for role, text in prompts.items():
            lines += ["", f"### {role}", "", "```text", text.rstrip("\n"), "```"]
    lines.append("")
    return "\n".join(lines)


# PATH in a card's snippet stands for the checkpoint folder.
def _model_use() -> list[str]:
    return [
        "```python",
        "from transformers import pipeline",
        "",
        "# trust_remote_code loads the image-only processor shipped here when torchvision is",
        "# missing; with torchvision the stock processor loads without it.",
        'pipe = pipeline("image-text-to-text", model="PATH", trust_remote_code=True)',
        "```",
    ]


def _adapter_use(base: str, local: bool) -> list[str]:
    where = "  # a local folder (relative: to the folder the workflow ran in)" if local else ""
    return [
        "A LoRA adapter (PEFT) on the base model below: load the base, then the adapter on it.",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForImageTextToText, AutoProcessor",
        "",
        f'base = AutoModelForImageTextToText.from_pretrained("{base}"){where}',
        'model = PeftModel.from_pretrained(base, "PATH")  # .merge_and_unload(): a plain model',
        "# trust_remote_code loads the image-only processor shipped here when torchvision is",
        "# missing; with torchvision the stock processor loads without it.",
        'processor = AutoProcessor.from_pretrained("PATH", trust_remote_code=True)',
        "```",
    ]


def prompt_examples(folder: str | os.PathLike, templates) -> dict[str, str]:
    """Per prompt template of ``templates`` (a method's roles' ``Method.templates``): the text the
    model sees (the folder's chat template applied to the prompt, fields shown as ``{name}``)."""
    import jinja2.meta

    from evovlm import prompts
    from evovlm.modeling import load_processor

    wanted = list(templates)
    if not wanted:
        return {}
    processor = load_processor(folder)
    env = prompts._environment()
    out = {}
    for template in wanted:
        source = env.loader.get_source(env, prompts.ROLES[template][0])[0]
        fields = jinja2.meta.find_undeclared_variables(env.parse(source))
        messages = prompts.render_messages(template, **{f: "{" + f + "}" for f in fields})
        out[template] = processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
    return out


def prepare_checkpoint(folder: str | os.PathLike) -> None:
    """Right after a save: drop workflow files and a card copied from the starting policy, and add
    the image-only processor code. The model card comes later (:func:`write_model_card`), once the
    round's rates are known."""
    folder = Path(folder)
    for name in (*WORKFLOW_FILES, "README.md"):
        (folder / name).unlink(missing_ok=True)
    add_processor_code(folder)
    honour_umask(folder)


def write_model_card(folder: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Write ``README.md`` (see :func:`model_card`) into a checkpoint folder atomically."""
    folder = Path(folder)
    for name in WORKFLOW_FILES:
        (folder / name).unlink(missing_ok=True)
    adapter_config = folder / "adapter_config.json"
    if adapter_config.is_file() and "adapter_base" not in info:
        base = json.loads(adapter_config.read_text()).get("base_model_name_or_path")
        info = {**info, "adapter_base": base}
    out = folder / "README.md"
    tmp = folder / ".README.md.tmp"
    tmp.write_text(model_card(info))
    os.replace(tmp, out)
    return out
