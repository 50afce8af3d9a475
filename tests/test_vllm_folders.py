"""Every model folder evovlm saves loads in vLLM: vLLM builds the stock ``Qwen2_5_VLProcessor``
itself (``auto_map`` is never read), which needs a video processor config beside the image
processor, or it refuses the folder ("Can't load video processor").

These run in the main environment (no vLLM): transformers' own loader of the video processor
config is what vLLM calls; tests/test_engine_contract.py starts vLLM on such a folder.
"""

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
