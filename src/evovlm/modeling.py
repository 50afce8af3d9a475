"""Loading models and processors the same way for the tiny model and real checkpoints.

``load_processor`` tries ``AutoProcessor`` first (the normal path on a GPU machine with
torchvision). Transformers' stock Qwen-VL processors cannot be built without torchvision
(they insist on a video processor), and ``AutoProcessor`` then silently falls back to a bare
tokenizer, which breaks later with ``KeyError: 'pixel_values'``. So when the processor it
returns has no image processor, we build :class:`~evovlm.processor.ImageOnlyQwenVLProcessor`:
the stock Qwen2.5-VL processor logic (image token expansion, chat template) without the video
part. Importing this module imports neither torch nor transformers (each function does), so the
model-folder checks of ``model.base`` (:func:`check_model_path`) run before any job cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path

from evovlm.config import EMBEDDED, ConfigError, base_kind

# Tokens that stand for pixels: a completion holding one cannot be replayed in training (the
# vision tower would be fed no image for it), so engines never sample them.
VISION_PLACEHOLDERS = ("<|image_pad|>", "<|video_pad|>")


def vision_placeholder_ids(tokenizer) -> list[int]:
    """Ids of :data:`VISION_PLACEHOLDERS` that ``tokenizer`` knows."""
    ids = []
    for token in VISION_PLACEHOLDERS:
        tid = tokenizer.convert_tokens_to_ids(token)
        if tid is not None and tid != tokenizer.unk_token_id:
            ids.append(tid)
    return sorted(ids)


def resolve_model_path(model: str | os.PathLike) -> str:
    """A local folder (must exist) or a hub id (``owner/name``), as a string."""
    text = str(model)
    looks_local = text.startswith((".", "/", "~")) or os.sep in text.strip("/").split("/", 1)[-1]
    path = Path(text).expanduser()
    if path.exists():
        return str(path)
    if looks_local or text.count("/") != 1:
        raise FileNotFoundError(
            f"model path {text!r} does not exist; build the embedded model first "
            f"(snakemake resources/tiny-base) or set model.base to a folder or hub id"
        )
    return text


ADAPTER_CONFIG = "adapter_config.json"
# Beside an adapter whose config names its base by hub id: the local folder the workflow fetched
# that base into (the hub may be out of reach from a compute node).
ADAPTER_BASE_PATH = "evovlm_base_path.json"
SOURCE_FILE = "evovlm-source.json"  # written by fetch_model: the hub id a folder came from


def adapter_base(model: str | os.PathLike) -> str | None:
    """The base model of a PEFT adapter folder (``base_model_name_or_path`` of its
    ``adapter_config.json``; the local copy of it named in :data:`ADAPTER_BASE_PATH` when that
    exists), or None for a plain model folder or hub id."""
    import json

    folder = Path(str(model)).expanduser()
    config = folder / ADAPTER_CONFIG
    if not config.is_file():
        return None
    local = folder / ADAPTER_BASE_PATH
    if local.is_file():
        path = str(json.loads(local.read_text())["path"])
        if Path(path).expanduser().exists():
            return path
    return str(json.loads(config.read_text())["base_model_name_or_path"])


def base_name(base: str | os.PathLike) -> str:
    """The name a user loads ``base`` by: the hub id of a folder :func:`fetch_model` made,
    else ``base`` as given."""
    import json

    source = Path(str(base)).expanduser() / SOURCE_FILE
    if source.is_file():
        repo_id = json.loads(source.read_text()).get("repo_id")
        if repo_id:
            return str(repo_id)
    return str(base)


def adapter_rank(model: str | os.PathLike) -> int:
    """The largest LoRA rank of an adapter folder (``r`` and any ``rank_pattern`` entry)."""
    import json

    config = json.loads((Path(str(model)).expanduser() / ADAPTER_CONFIG).read_text())
    return max([int(config.get("r") or 0), *map(int, (config.get("rank_pattern") or {}).values())])


def load_processor(model: str | os.PathLike):
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

    from evovlm.processor import ImageOnlyQwenVLProcessor  # a transformers subclass

    path = resolve_model_path(model)
    try:
        processor = AutoProcessor.from_pretrained(path)
    except (AttributeError, ImportError, OSError, TypeError, ValueError):
        processor = None
    if processor is not None and getattr(processor, "image_processor", None) is not None:
        tokenizer = processor.tokenizer
    else:
        tokenizer = AutoTokenizer.from_pretrained(path)
        processor = ImageOnlyQwenVLProcessor(
            image_processor=AutoImageProcessor.from_pretrained(path, backend="pil"),
            tokenizer=tokenizer,
            chat_template=tokenizer.chat_template,
        )
    # Generation and GRPO both need left padding (right padding breaks the rope index).
    tokenizer.padding_side = "left"
    return processor


def load_model(
    model: str | os.PathLike, dtype: str = "auto", device: str | None = None, merge: bool = True
):
    """A model folder or hub id; an adapter folder (see :func:`adapter_base`) loads its base and
    the adapter on it (PEFT), merged in memory unless ``merge`` is false (a ``PeftModel``)."""
    import torch
    from transformers import AutoModelForImageTextToText

    path = resolve_model_path(model)
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    base = adapter_base(path)
    loaded = AutoModelForImageTextToText.from_pretrained(
        resolve_model_path(base) if base else path, dtype=torch_dtype
    )
    if base:
        from peft import PeftModel

        loaded = PeftModel.from_pretrained(loaded, path)
        if merge:
            loaded = loaded.merge_and_unload()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return loaded.to(device).eval()


# Files a model folder needs for the engines and training (weights, configs, tokenizer,
# processor, chat template); other formats of the same weights (.bin, .pt, gguf) are skipped.
FETCH_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def fetch_model(repo_id: str, out_dir: str | os.PathLike, revision: str | None = None) -> Path:
    """Put hub model ``repo_id`` (at ``revision``) into ``out_dir`` as a plain folder.

    The files come through the Hugging Face cache (``snapshot_download``: downloaded once, or
    taken from the cache, offline too) and are hard-linked into ``out_dir`` (copied across file
    systems). Checks that the result is a model folder (config, tokenizer and processor files)
    and records the commit it came from in ``out_dir/evovlm-source.json``.
    """
    import json
    import shutil

    from huggingface_hub import snapshot_download

    snapshot = Path(snapshot_download(repo_id, revision=revision, allow_patterns=FETCH_PATTERNS))
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for src in sorted(snapshot.rglob("*")):
        if src.is_dir():
            continue
        dst = tmp / src.relative_to(snapshot)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src.resolve(), dst)
        except OSError:
            shutil.copy2(src, dst)
    missing = missing_model_files(tmp)
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(
            f"hub model {repo_id!r} has no {', '.join(missing)} file; it is not a model "
            "evovlm can load (set model.base to a vision-language model)"
        )
    source = {"repo_id": repo_id, "revision": revision, "commit": snapshot.name}
    (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


# What a model folder must hold (any one name per kind): the checks of `model.base`.
MODEL_FILES = {
    "config": ("config.json",),
    "tokenizer": ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json"),
    "processor": ("preprocessor_config.json", "processor_config.json"),
}


def missing_model_files(folder: str | Path) -> list[str]:
    """The kinds of :data:`MODEL_FILES` that ``folder`` lacks (empty = looks like a model)."""
    names = {p.name for p in Path(folder).iterdir()} if Path(folder).is_dir() else set()
    return [kind for kind, options in MODEL_FILES.items() if not names.intersection(options)]


def check_model_path(config: dict) -> None:
    base = config.get("model", {}).get("base", EMBEDDED)
    if base_kind(base) != "local":
        return
    path = Path(base).expanduser()
    if not path.exists():
        raise ConfigError(
            f"config key 'model.base': path {base!r} does not exist; "
            "fix: point it at a model folder, a hub id (owner/name) or 'embedded'"
        )
    missing = missing_model_files(path)
    if missing:
        wanted = "; ".join(f"{kind}: {' or '.join(MODEL_FILES[kind])}" for kind in missing)
        raise ConfigError(
            f"config key 'model.base': folder {base!r} is not a model (no {', '.join(missing)} "
            f"file); fix: point it at a saved model folder, which holds {wanted}"
        )
