"""Model preparation and checkpoints: LoRA targets, loading, atomic save, copy, resume."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from evovlm.train.config import TrainConfig
from evovlm.train.grouping import Group

log = logging.getLogger("evovlm.train")

# ---------------------------------------------------------------------------------------------
# Model preparation and saving


def _is_vision_tower(name: str) -> bool:
    return re.search(r"(^|\.)visual\.", name) is not None and "merger" not in name


def is_vision(name: str) -> bool:
    """The vision tower or its merger (projector)."""
    return re.search(r"(^|\.)visual\.", name) is not None


def lora_target_names(model, patterns: list[str], freeze_vision_tower: bool) -> list[str]:
    """Full names of the linear layers matching ``patterns`` (vision tower out if frozen)."""
    import torch

    compiled = [re.compile(p) for p in patterns]
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and any(c.fullmatch(name) for c in compiled)
        and not (freeze_vision_tower and _is_vision_tower(name))
    ]
    if not names:
        raise ValueError(
            f"train.lora_target_modules {patterns} match no linear layer of the model; "
            "patterns are regular expressions matched against full module names"
        )
    return names


def load_for_training(path: str, cfg: TrainConfig, start_policy: str):
    """The model at ``path`` (resolved: a folder or hub id) in fp32, ready for the trainer."""
    import torch
    from transformers import AutoModelForImageTextToText

    # fp32 master weights; mixed precision (if any) is autocast by the trainer.
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    # TRL builds the KL reference from this id: always the round's starting weights.
    model.config._name_or_path = start_policy
    if cfg.method == "full" and cfg.freeze_vision_tower:
        for name, param in model.named_parameters():
            if _is_vision_tower(name):
                param.requires_grad_(False)
    return model


def save_dtype(path: str):
    """The dtype (bf16 or fp16, else None) of the weights of ``path`` (a resolved policy
    folder or hub id; an adapter's base)."""
    import torch
    from transformers import AutoConfig

    from evovlm.modeling import adapter_base, resolve_model_path

    base = adapter_base(path)
    config = AutoConfig.from_pretrained(resolve_model_path(base) if base else path)
    dtype = getattr(config, "dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if dtype in (torch.bfloat16, torch.float16) else None


def save_checkpoint(
    model,
    processor,
    out_dir: str | os.PathLike,
    source: str | None = None,
    base: str | None = None,
    state_dict: dict | None = None,
) -> None:
    """Save a plain HF folder (model, processor, tokenizer) atomically: tmp folder, then rename.

    A ``PeftModel`` is saved as its adapter only (``adapter_config.json`` and
    ``adapter_model.safetensors``, the "default" adapter: TRL's frozen "ref" copy is left out),
    with ``base`` (the shared base model, as the workflow names it) as ``base_model_name_or_path``
    and the base's ``config.json`` beside it. Files of ``source`` (a local policy folder) that the
    save does not write (e.g. metadata of the embedded model) are copied along; weights never are.
    ``state_dict``: the full weights gathered from a sharded (FSDP) model, saved instead of the
    model's own (its parameters are shards).
    """
    out = Path(out_dir)
    tmp = _tmp_sibling(out)
    if hasattr(model, "peft_config"):
        model.save_pretrained(tmp, selected_adapters=["default"])
        _point_adapter_at(tmp, base)
        model.get_base_model().config.save_pretrained(tmp)
        _restore_name(tmp, base)
    else:
        model.save_pretrained(tmp, state_dict=state_dict)
    processor.save_pretrained(tmp)
    if source is not None and Path(source).is_dir():
        for item in Path(source).iterdir():
            weights = item.suffix in (".safetensors", ".bin", ".pt") or item.name.endswith(
                ".index.json"
            )
            if item.is_file() and not weights and not (tmp / item.name).exists():
                shutil.copy2(item, tmp / item.name)
    _commit(tmp, out)


def _point_adapter_at(folder: Path, base: str | None) -> None:
    if base is None:
        return
    from evovlm.modeling import ADAPTER_BASE_PATH, base_name

    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text())
    # Users load the base by its hub id; the workflow by the folder it fetched it into.
    name = base_name(base)
    config["base_model_name_or_path"] = name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if name != str(base):
        (folder / ADAPTER_BASE_PATH).write_text(json.dumps({"path": str(base)}) + "\n")


def _restore_name(folder: Path, base: str | None) -> None:
    """config.json of an adapter folder: the base's, without the start policy's name in it."""
    config_path = folder / "config.json"
    if base is not None and config_path.exists():
        config = json.loads(config_path.read_text())
        config.pop("_name_or_path", None)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def identity_adapter(policy: str, cfg: TrainConfig):
    """``policy`` (a full model) with a fresh LoRA adapter of ``cfg`` (B = 0: the same outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from evovlm.modeling import resolve_model_path

    model = AutoModelForImageTextToText.from_pretrained(
        resolve_model_path(policy), dtype=torch.float32
    )
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_target_names(model, cfg.lora_target_modules, cfg.freeze_vision_tower),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def copy_policy(policy: str, out_dir: str | os.PathLike, cfg: TrainConfig | None = None) -> None:
    """The checkpoint is the previous policy: copy a folder, or load and save a hub id. With
    adapters (``cfg.adapters``) a full model (round 1's base) becomes a fresh, zero-effect
    adapter on it, so every checkpoint of the run is an adapter folder."""
    from evovlm.modeling import adapter_base, load_model, load_processor, resolve_model_path

    path = resolve_model_path(policy)
    out = Path(out_dir)
    if cfg is not None and cfg.adapters and adapter_base(path) is None:
        source = path if Path(path).is_dir() else None
        model = identity_adapter(path, cfg)
        save_checkpoint(model, load_processor(path), out, source=source, base=policy)
    elif Path(path).is_dir():
        tmp = _tmp_sibling(out)
        shutil.copytree(path, tmp, dirs_exist_ok=True)
        _commit(tmp, out)
    else:
        save_checkpoint(load_model(path, device="cpu"), load_processor(path), out)


# Each role's adaptive KL coefficient at the end of the round that made the checkpoint: the
# EvoLMM reference keeps one coefficient per role for the whole run (train.kl_carry).
KL_BETAS_FILE = "kl_coefficient.json"


def read_kl_betas(policy: str | os.PathLike) -> dict[str, float]:
    """Role -> the adaptive KL coefficient a policy folder's training ended with ({} if none)."""
    path = Path(policy) / KL_BETAS_FILE
    return {k: float(v) for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}


def write_kl_betas(folder: str | os.PathLike, betas: dict[str, float]) -> None:
    path = Path(folder) / KL_BETAS_FILE
    if betas:
        path.write_text(json.dumps(betas, indent=2, sort_keys=True) + "\n")


def _tmp_sibling(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def _commit(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def fingerprint(policy: str, cfg: TrainConfig, groups: list[Group]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([policy, asdict(cfg)], sort_keys=True).encode())
    for g in groups:
        h.update(json.dumps([g.uid, g.prompt_ids, g.completion_ids, g.rewards]).encode())
    return h.hexdigest()


def last_checkpoint(folder: Path) -> str | None:
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    if not found:
        return None
    return str(max(found, key=lambda p: int(p.name.split("-")[-1])))
