"""Render settings, the result record and the fixed status set (see :mod:`evovlm.render`)."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import Any

from evovlm.config import section_from_dict

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


@dataclass
class RenderConfig:
    """Settings of the rendering sandbox (config section ``render:``).

    Every field is a config key; one line each, for the JSON schema:

    - ``width``: SVG output width in pixels; the SVG is scaled to fit width x height, aspect kept.
    - ``height``: SVG output height in pixels (see ``width``).
    - ``max_svg_side``: largest SVG width, height or viewBox side (px/user units) accepted; more is too_large.
    - ``max_aspect``: largest long/short side ratio of an SVG or a figure; more is too_large.
    - ``max_code_chars``: longest program text accepted; longer is too_large.
    - ``timeout_s``: wall-clock seconds per program; past it the program's process group is killed (timeout).
    - ``cpu_seconds``: CPU seconds per program (RLIMIT_CPU); past it: timeout.
    - ``memory_mb``: address space (MiB) a program may add on top of the warm worker (RLIMIT_AS); past it: memory.
    - ``max_file_mb``: largest file (MiB) a program may write in its private directory (RLIMIT_FSIZE); past it: too_large.
    - ``max_processes``: threads a program may add (RLIMIT_NPROC, applied when not running as root); processes are always forbidden.
    - ``dpi``: resolution at which the harness saves a Python figure (the program's own dpi is ignored).
    - ``max_figure_inches``: largest figure side in inches; larger is too_large (never clamped).
    - ``workers``: warm worker processes; 0 = the number of threads the stage is given.
    - ``seccomp``: also install a seccomp filter (Linux x86_64/aarch64) denying fork, exec, sockets and signals to others.
    """

    width: int = 448
    height: int = 448
    max_svg_side: float = 20000.0
    max_aspect: float = 20.0
    max_code_chars: int = 200_000
    timeout_s: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 1024
    max_file_mb: int = 16
    max_processes: int = 4
    dpi: int = 100
    max_figure_inches: float = 20.0
    workers: int = 0
    seccomp: bool = True

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
    image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
    if image.getextrema()[3][0] == 255:  # opaque (the usual case): drop alpha in C
        return encode_rgb(image.convert("RGB"))
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    rgb = ((rgba[:, :, :3].astype(np.uint16) * alpha + 255 * (255 - alpha) + 127) // 255).astype(
        np.uint8
    )
    return encode_rgb(Image.fromarray(rgb, "RGB"))


def encode_rgb(image) -> RenderResult:
    """``ok`` with the PNG of an RGB PIL image, or ``blank_image`` when it is one flat colour."""
    width, height = image.size
    extrema = image.getextrema()
    if all(low == high for low, high in extrema):
        return RenderResult(
            "blank_image",
            f"single flat colour {tuple(int(low) for low, _ in extrema)}",
            width=width,
            height=height,
        )
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=_PNG_LEVEL)
    return RenderResult("ok", None, out.getvalue(), width, height)
