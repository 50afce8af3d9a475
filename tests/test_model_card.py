"""Checkpoints load with their own model card's snippet (issue 29).

An EvoLMM (LoRA) checkpoint is an adapter folder: its card must show PEFT's loading, which must
work as written, and the adapter must name its base the way a user loads it (the hub id, not the
folder the workflow fetched it into).
"""

import json
import re
import shutil
import subprocess
import sys

import pytest

from evovlm import hfio, methods
from evovlm.modeling import adapter_base, load_model
from evovlm.train import TrainConfig
from evovlm.train.checkpoint import copy_policy


def _adapter(base, out):
    """An adapter checkpoint on ``base``, as the training job writes it for a round."""
    cfg = TrainConfig.from_dict({"method": "lora", "lora_save": "adapter"}, methods.get("evolmm"))
    copy_policy(str(base), out, cfg)
    hfio.prepare_checkpoint(out)
    return out


def _card(folder, method="evolmm", roles=("solver",)):
    info = {
        "base_model": "embedded",
        "method": method,
        "lineage": roles[0],
        "roles": list(roles),
        "round": 1,
        "prompts": hfio.prompt_examples(folder, methods.get(method).role_templates(roles)),
    }
    return hfio.write_model_card(folder, info).read_text()


def _snippet(card: str, folder) -> str:
    use = card.split("## Use", 1)[1]
    code = re.search(r"```python\n(.*?)```", use, re.S).group(1)
    return code.replace('"PATH"', json.dumps(str(folder)))


def test_an_adapter_loads_with_its_cards_snippet(tiny_model_dir, tmp_path):
    ckpt = _adapter(tiny_model_dir, tmp_path / "checkpoint" / "solver")
    assert not (ckpt / "model.safetensors").exists()  # an adapter, not a model
    card = _card(ckpt)
    code = _snippet(card, ckpt)
    code += (
        "\nassert isinstance(model, PeftModel)"
        "\nassert any('lora_A' in n for n, _ in model.named_parameters())"
        "\nprint(type(processor).__name__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "library_name: peft" in card
    assert "# a local folder" in card and "base_model:" not in card


def test_a_relative_base_folder_is_not_taken_for_a_hub_id(tiny_model_dir, tmp_path, monkeypatch):
    # the workflow's own base: resources/tiny-warm, relative to the folder it runs in
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model_dir, tmp_path / "resources" / "tiny-warm")
    ckpt = _adapter("resources/tiny-warm", tmp_path / "checkpoint" / "solver")
    card = _card(ckpt)
    assert 'from_pretrained("resources/tiny-warm")  # a local folder' in card
    assert "base_model:" not in card


def test_a_fetched_hub_base_is_recorded_by_its_hub_id(tiny_model_dir, tmp_path):
    # what fetch_base_model leaves in the resources folder for model.base: org/tiny-vlm
    fetched = tmp_path / "resources" / "hub" / "org--tiny-vlm"
    shutil.copytree(tiny_model_dir, fetched)
    (fetched / "evovlm-source.json").write_text(json.dumps({"repo_id": "org/tiny-vlm"}))
    ckpt = _adapter(fetched, tmp_path / "checkpoint" / "solver")
    config = json.loads((ckpt / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "org/tiny-vlm"
    assert adapter_base(ckpt) == str(fetched)  # the workflow still loads the local copy
    assert load_model(ckpt, device="cpu") is not None
    card = _card(ckpt)
    assert "base_model: org/tiny-vlm" in card
    assert 'from_pretrained("org/tiny-vlm")' in card


@pytest.mark.parametrize(
    ("method", "roles", "expected"),
    [
        ("evolmm", ("solver",), ["evolmm_solver", "<answer></answer>", "{question}"]),
        ("evolmm", ("proposer",), ["evolmm_proposer", "<question>"]),
        ("mmzero", ("coder",), ["coder_svg", "coder_python", "{caption}"]),
    ],
)
def test_the_card_shows_each_roles_prompt_format(tiny_model_dir, tmp_path, method, roles, expected):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    card = _card(folder, method, roles)
    section = card.split("## Prompt format", 1)[1]
    assert "<|im_start|>user" in section and "<|im_start|>assistant" in section
    for text in expected:
        assert text in section
