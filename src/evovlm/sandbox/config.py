"""Render settings, the result record and the fixed status set (see :mod:`evovlm.render`)."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import Any

from evovlm.config import schema_dataclass, section_from_dict

#: Every render gets exactly one of these (documented in :mod:`evovlm.render`).
RENDER_STATUSES: tuple[str, ...] = (
    "ok",
    "empty",
    "not_code",
    "parse_error",
    "runtime_error",
    "timeout",
    "memory",
    "too_large",
    "blank_image",
    "forbidden",
)

LANGUAGES: tuple[str, ...] = ("svg", "python")

_MAX_ERROR_CHARS = 300


@schema_dataclass("render")
class RenderConfig:
    """Settings of the rendering sandbox (config section ``render:``). Each key, its type,
    default and help are declared once, in the schema's ``render`` section."""

    def __post_init__(self) -> None:
        positive = ("width", "height", "max_svg_side", "max_aspect", "max_code_chars", "timeout_s")
        positive += ("cpu_seconds", "memory_mb", "max_file_mb", "dpi", "max_figure_inches")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"render.{name} must be a positive number, got {value!r}")
        for name in ("max_processes", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"render.{name} must be an integer >= 0, got {value!r}")
        if self.max_aspect < 1:
            raise ValueError(f"render.max_aspect must be >= 1, got {self.max_aspect!r}")
        if not isinstance(self.seccomp, bool):
            raise ValueError(f"render.seccomp must be true or false, got {self.seccomp!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RenderConfig:
        """Build from the ``render:`` config section; an unknown key is a ValueError."""
        return section_from_dict(cls, d, "render")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RenderResult:
    """One render: ``status`` from :data:`RENDER_STATUSES`; ``png`` only when ok."""

    status: str
    error: str | None = None
    png: bytes | None = None
    width: int | None = None
    height: int | None = None
    render_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def short_error(text: object) -> str:
    """One line, at most a few hundred characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def exception_error(exc: BaseException) -> str:
    message = str(exc)
    return short_error(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


# zlib level 3: half the encoding time of level 6 for ~12 % larger files on charts.
_PNG_LEVEL = 3


def finish_rgba(rgba, max_side: int) -> RenderResult:
    """Composite straight-alpha RGBA pixels (H x W x 4, uint8) on white, so a transparent
    picture never turns black, check that they are not one flat colour, and encode an RGB PNG."""
    import numpy as np
    from PIL import Image

    height, width = int(rgba.shape[0]), int(rgba.shape[1])
    if max(width, height) > max_side:
        return RenderResult("too_large", f"image of {width}x{height} px")
    if width == 0 or height == 0:
        return RenderResult("blank_image", "empty image", width=width, height=height)
    rgba = np.ascontiguousarray(rgba)
    if rgba[:, :, 3].min() == 255:  # opaque (the usual case): drop alpha in C
        pixels = rgba.view(np.uint32).reshape(height, width)
        first = rgba[0, 0, :3]
        flat = tuple(int(v) for v in first) if (pixels == pixels[0, 0]).all() else None
        image = Image.frombytes("RGB", (width, height), rgba.data, "raw", "RGBX")
        return encode_rgb(image, flat)
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    rgb = ((rgba[:, :, :3].astype(np.uint16) * alpha + 255 * (255 - alpha) + 127) // 255).astype(
        np.uint8
    )
    return encode_rgb(Image.fromarray(rgb, "RGB"))


_UNKNOWN = object()


def encode_rgb(image, flat=_UNKNOWN) -> RenderResult:
    """``ok`` with the PNG of an RGB PIL image, or ``blank_image`` when it is one flat colour.
    ``flat``: that colour (an ``(r, g, b)`` tuple) or None, when the caller already knows."""
    width, height = image.size
    if flat is _UNKNOWN:
        extrema = image.getextrema()
        flat = tuple(int(low) for low, _ in extrema)
        if not all(low == high for low, high in extrema):
            flat = None
    if flat is not None:
        return RenderResult(
            "blank_image", f"single flat colour {tuple(flat)}", width=width, height=height
        )
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=_PNG_LEVEL)
    return RenderResult("ok", None, out.getvalue(), width, height)
