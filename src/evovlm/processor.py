"""The image-only Qwen-VL processor (a transformers subclass, so importing this module imports
transformers; :func:`evovlm.modeling.load_processor` builds it when ``AutoProcessor`` falls back
to a bare tokenizer, see :mod:`evovlm.modeling`)."""

from __future__ import annotations

from pathlib import Path

from transformers import Qwen2_5_VLProcessor


class ImageOnlyQwenVLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL / Qwen3-VL style processor for images and text only (no torchvision)."""

    # Saved folders name the stock class, so an environment with torchvision loads the stock
    # processor and one without it gets this one from ``load_processor``.
    saved_class_name = "Qwen2_5_VLProcessor"

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    def to_dict(self):
        output = super().to_dict()
        output["processor_class"] = self.saved_class_name
        output.setdefault("video_processor", video_processor_dict(self.image_processor))
        return output

    def save_pretrained(self, save_directory, *args, **kwargs):
        import json

        result = super().save_pretrained(save_directory, *args, **kwargs)
        # The tokenizer config records the processor class too (set during the save above).
        tokenizer_config = Path(save_directory) / "tokenizer_config.json"
        if tokenizer_config.exists():
            data = json.loads(tokenizer_config.read_text())
            if data.get("processor_class") != self.saved_class_name:
                data["processor_class"] = self.saved_class_name
                tokenizer_config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return result


def video_processor_dict(image_processor) -> dict:
    """The video processor entry a saved folder needs beside its image processor.

    vLLM builds the stock ``Qwen2_5_VLProcessor.from_pretrained`` itself (``auto_map`` is not
    read), and that needs a video processor config (transformers reads the ``video_processor``
    entry of ``processor_config.json``, else ``video_preprocessor_config.json``); without one it
    refuses the folder. The entry mirrors the image processor (same patching, same pixel
    bounds); evovlm never feeds videos (``limit_mm_per_prompt`` video 0)."""
    entry = {k: v for k, v in image_processor.to_dict().items() if not k.startswith("_")}
    entry.pop("image_processor_type", None)
    entry["video_processor_type"] = "Qwen2VLVideoProcessor"
    return entry
