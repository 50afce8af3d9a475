"""Every model folder evovlm saves loads in vLLM: vLLM builds the stock ``Qwen2_5_VLProcessor``
itself (``auto_map`` is never read), which needs a video processor config beside the image
processor, or it refuses the folder ("Can't load video processor").

These run in the main environment (no vLLM): transformers' own loader of the video processor
config is what vLLM calls; tests/test_engine_contract.py starts vLLM on such a folder.
"""

from pathlib import Path

from transformers.video_processing_utils import BaseVideoProcessor

from evovlm.modeling import load_processor


def _video_config(folder):
    config, _ = BaseVideoProcessor.get_video_processor_dict(str(folder))
    return config


def test_the_tiny_model_folder_has_a_video_processor(tiny_model_dir):
    video = _video_config(tiny_model_dir)
    image = load_processor(tiny_model_dir).image_processor
    assert video["video_processor_type"] == "Qwen2VLVideoProcessor"
    assert (video["patch_size"], video["merge_size"], video["temporal_patch_size"]) == (
        image.patch_size,
        image.merge_size,
        image.temporal_patch_size,
    )
    assert video["size"] == dict(image.size)


def test_a_processor_saved_again_keeps_it(tiny_model_dir, tmp_path):
    """Checkpoints, warm models and merged copies save the processor they loaded."""
    load_processor(tiny_model_dir).save_pretrained(tmp_path / "checkpoint")
    assert _video_config(tmp_path / "checkpoint")["video_processor_type"] == "Qwen2VLVideoProcessor"
    again = load_processor(tmp_path / "checkpoint")
    assert again.image_processor.size == load_processor(tiny_model_dir).image_processor.size


def test_a_merged_copy_is_built_on_cpu_and_deleted_at_exit(tiny_model_dir, tmp_path):
    """The fallback for a vLLM without tower LoRA: the adapter merged into a temporary folder,
    which no longer outlives the process that made it."""
    import subprocess
    import sys

    from peft import LoraConfig, get_peft_model

    from evovlm.modeling import load_model

    model = load_model(tiny_model_dir, dtype="float32", device="cpu")
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "visual.merger.mlp.0"])
    get_peft_model(model, config).save_pretrained(tmp_path / "adapter")
    load_processor(tiny_model_dir).save_pretrained(tmp_path / "adapter")  # as checkpoints do
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from evovlm.engines.vllm_engine import merged_copy\n"
        "folder = Path(merged_copy(sys.argv[1]))\n"
        "assert (folder / 'model.safetensors').is_file()\n"
        "assert (folder / 'processor_config.json').is_file()\n"
        "print(folder)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "adapter")],
        capture_output=True,
        text=True,
        check=True,
    )
    folder = Path(out.stdout.strip().splitlines()[-1])
    assert folder.name.startswith("evovlm-vllm-merged-")
    assert not folder.exists()
