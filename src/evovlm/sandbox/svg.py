"""SVG to PNG through cairosvg, with everything that could reach outside the text refused.

cairosvg already parses with defusedxml (no entity declarations, no external entities) and, by
default, answers any non-``data:`` URL with an empty picture. On top of that, this module:

- refuses (status ``forbidden``) what cairosvg would load from outside the text: an ``href`` of
  ``<image>``, ``<use>`` or ``<tref>`` that is neither a fragment (``#id``) nor a ``data:`` URL,
  and a CSS ``@import`` in a ``<style>`` sheet, instead of rendering a silently different picture.
  What cairosvg never loads renders as cairosvg draws it: gradient and pattern templates,
  ``url()`` paint and ``<textPath>`` (it reads only their fragment), ``<feImage>``, fonts
  (``@font-face``, ``<font-face-uri>``), XInclude, ``<?xml-stylesheet?>`` and hyperlinks;
- fetches ``data:`` URLs itself, refusing raster images larger than the SVG limits (a small
  base64 PNG can declare a gigapixel canvas), and refuses any other URL cairosvg asks for (the
  enforcement, whatever the check above misses);
- checks width, height and viewBox before rasterising (``too_large``), then scales the picture
  to fit ``width x height`` of the config, keeping its aspect ratio, and composites it on white.
"""

from __future__ import annotations

import base64
import io
import math
import re
import time
import urllib.parse
from types import SimpleNamespace

from .config import (
    RenderConfig,
    RenderResult,
    encode_rgb,
    exception_error,
    finish_rgba,
    short_error,
)

_SVG_TAG = re.compile(rb"<\s*(?:[A-Za-z_][\w.-]*:)?svg[\s/>]", re.IGNORECASE)
_SVG_NAMESPACES = ("", "http://www.w3.org/2000/svg")
# Never drawn, so nothing under them is loaded (a <use> of an element inside still goes
# through the fetcher).
_INERT_SUBTREES = ("metadata", "title", "desc")
# The elements whose href cairosvg fetches: <use> (cairosvg/defs.py use), <image>
# (cairosvg/image.py) and <tref> (cairosvg/parser.py Node.text_children). Every other href
# (gradients, patterns, textPath, markers) is read for its fragment only.
_LOADING_ELEMENTS = ("use", "image", "tref")
_LINK_ATTRS = ("{http://www.w3.org/1999/xlink}href", "href")
_SVG_STYLE = "{http://www.w3.org/2000/svg}style"
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|jpg|gif|webp|bmp|svg\+xml)[;,]", re.IGNORECASE)


class SvgForbidden(Exception):
    """The SVG tried to reach something outside its own text."""


def _local_ref(value: str) -> bool:
    value = value.strip()
    return value == "" or value.startswith("#") or bool(_DATA_IMAGE.match(value))


def _decode_data_url(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise SvgForbidden("malformed data: URL")
    if header.lower().endswith(";base64"):
        return base64.b64decode(payload + "=" * (-len(payload) % 4))
    return urllib.parse.unquote_to_bytes(payload)


def _make_fetcher(cfg: RenderConfig, problems: list[tuple[str, str]]):
    """cairosvg URL fetcher: ``data:`` URLs only, raster images within the SVG size limits.
    Each refusal is recorded in ``problems`` as (status, message), since cairosvg may swallow
    the exception and draw nothing instead."""
    max_pixels = float(cfg.max_svg_side) ** 2

    def refuse(status: str, message: str):
        problems.append((status, short_error(message)))
        raise SvgForbidden(message)

    def fetch(url: str, resource_type: str) -> bytes:
        if not url or not url.lower().startswith("data:"):
            refuse("forbidden", f"external reference {url[:80]!r}")
        try:
            data = _decode_data_url(url)
        except (ValueError, SvgForbidden) as exc:
            refuse("parse_error", f"bad data: URL ({exception_error(exc)})")
        if len(data) > 16 * 1024 * 1024:
            refuse("too_large", "embedded data larger than 16 MiB")
        if not data.lstrip().startswith(b"<"):  # a raster image: check its declared size
            from PIL import Image

            try:
                with Image.open(io.BytesIO(data)) as img:
                    w, h = img.size
            except Image.DecompressionBombError as exc:
                refuse("too_large", f"embedded image: {exc}")
            except Exception as exc:
                refuse("parse_error", f"embedded image: {exception_error(exc)}")
            if max(w, h) > cfg.max_svg_side or w * h > max_pixels:
                refuse("too_large", f"embedded image of {w}x{h} px")
        return data

    return fetch


def _css_imports(text: str) -> list[str]:
    """The targets of a style sheet's ``@import`` rules, as cairosvg reads them
    (cairosvg/css.py find_stylesheets_rules: top-level ``@import`` of a string or unquoted
    ``url()`` token; a quoted ``url("...")`` is a function token, which it skips)."""
    import tinycss2

    targets = []
    for rule in tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True):
        if rule.type != "at-rule" or rule.lower_at_keyword != "import" or rule.content is not None:
            continue
        token = tinycss2.parse_one_component_value(rule.prelude)
        if token.type in ("string", "url"):
            targets.append(token.value)
    return targets


def _scan(root) -> str | None:
    """The first reference cairosvg would load from outside the document, else None.

    That is an ``href`` of ``<image>``, ``<use>`` or ``<tref>`` (outside ``<metadata>``,
    ``<title>``, ``<desc>`` and other XML namespaces, never drawn) that is not local, and an
    ``@import`` in a ``<style>`` sheet (cairosvg reads every SVG ``<style>`` of type text/css).
    cairosvg's URL fetcher (``data:`` only) stays the enforcement for anything this misses."""
    for style in root.iter(_SVG_STYLE):
        if style.get("type", "text/css") == "text/css" and style.text:
            for target in _css_imports(style.text):
                if not _local_ref(target):
                    return f"CSS @import of {target.strip()[:80]!r}"
    stack = [(root, False)]
    while stack:
        element, inert = stack.pop()
        tag = element.tag if isinstance(element.tag, str) else ""
        namespace = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
        local = tag.rsplit("}", 1)[-1]
        inert = inert or namespace not in _SVG_NAMESPACES or local in _INERT_SUBTREES
        stack.extend((child, inert) for child in reversed(element))
        if inert or local not in _LOADING_ELEMENTS:
            continue
        for attr in _LINK_ATTRS:
            value = element.get(attr)
            if value is not None:
                if not _local_ref(value):
                    return f"external reference {value.strip()[:80]!r} in <{local}>"
                break  # cairosvg reads xlink:href first, href only without it
    return None


def _size(cfg: RenderConfig, tree) -> tuple[float, float] | str:
    """Intrinsic (width, height) in px from width/height/viewBox, or an error string."""
    from cairosvg.helpers import node_format

    # Percentages resolve against the output box; units against 96 dpi, 12pt font.
    probe = SimpleNamespace(
        context_width=cfg.width, context_height=cfg.height, dpi=96, font_size=16
    )
    try:
        width, height, viewbox = node_format(probe, tree)
    except (ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
        return f"bad width/height/viewBox: {exception_error(exc)}"
    sides = [width, height] + (list(viewbox[2:4]) if viewbox else [])
    if viewbox and len(viewbox) != 4:
        return f"bad viewBox {tree.get('viewBox')!r}"
    if not all(math.isfinite(s) for s in sides) or (
        viewbox and not all(map(math.isfinite, viewbox))
    ):
        return "too_large:non-finite width/height/viewBox"
    if max(abs(s) for s in sides) > cfg.max_svg_side:
        return f"too_large:size {width:g}x{height:g} (viewBox {viewbox}) over max_svg_side {cfg.max_svg_side:g}"
    if width <= 0 or height <= 0 or (viewbox and (viewbox[2] <= 0 or viewbox[3] <= 0)):
        return f"zero or negative size {width:g}x{height:g} (viewBox {viewbox})"
    if max(width, height) / min(width, height) > cfg.max_aspect:
        return f"too_large:aspect ratio of {width:g}x{height:g} over max_aspect {cfg.max_aspect:g}"
    return width, height


def render_svg(code: str | bytes | None, cfg: RenderConfig | None = None) -> RenderResult:
    """Render one SVG document to a PNG that fits ``cfg.width x cfg.height`` (aspect kept).

    Never raises for bad input: the outcome is the result's status. Runs in the calling process;
    for hostile input use it through :class:`~evovlm.sandbox.pool.RenderPool` (time and
    memory limits)."""
    cfg = cfg or RenderConfig()
    start = time.perf_counter()
    result = _render_svg(code, cfg)
    result.render_ms = (time.perf_counter() - start) * 1000.0
    return result


def _render_svg(code: str | bytes | None, cfg: RenderConfig) -> RenderResult:
    raw = _svg_bytes(code, cfg)
    if isinstance(raw, RenderResult):
        return raw
    problems: list[tuple[str, str]] = []
    tree = _parse(raw, cfg, problems)
    if isinstance(tree, RenderResult):
        return tree
    size = _size(cfg, tree)
    if isinstance(size, str):
        if size.startswith("too_large:"):
            return RenderResult("too_large", short_error(size.removeprefix("too_large:")))
        return RenderResult("parse_error", short_error(size))
    width, height = size
    scale = min(cfg.width / width, cfg.height / height)
    out_w = max(1, min(cfg.width, round(width * scale)))
    out_h = max(1, min(cfg.height, round(height * scale)))
    return _paint(tree, cfg, problems, out_w, out_h)


def _svg_bytes(code: str | bytes | None, cfg: RenderConfig) -> bytes | RenderResult:
    """The document's bytes (stripped, without a BOM), or why there is nothing to render."""
    if code is None:
        return RenderResult("empty", "no code")
    raw = code.encode("utf-8", "surrogatepass") if isinstance(code, str) else bytes(code)
    raw = raw.strip().removeprefix(b"\xef\xbb\xbf").strip()
    if not raw:
        return RenderResult("empty", "empty code")
    if len(raw) > cfg.max_code_chars * 4 or (
        isinstance(code, str) and len(code) > cfg.max_code_chars
    ):
        return RenderResult("too_large", f"code longer than {cfg.max_code_chars} characters")
    if not _SVG_TAG.search(raw):
        return RenderResult("not_code", "no <svg> element")
    return raw


def _parse(raw: bytes, cfg: RenderConfig, problems: list[tuple[str, str]]):
    """cairosvg's tree of a safe ``<svg>`` document, or the result that refuses it. The
    fetcher appends what it refused to ``problems``."""
    from xml.etree.ElementTree import ParseError

    from cairosvg.parser import Tree
    from defusedxml import DefusedXmlException

    fetch = _make_fetcher(cfg, problems)
    try:
        tree = Tree(bytestring=raw, url_fetcher=fetch, unsafe=False)
    except DefusedXmlException as exc:
        return RenderResult("forbidden", short_error(f"DTD/entity declaration: {exc!r}"))
    except ParseError as exc:
        return RenderResult("parse_error", exception_error(exc))
    except SvgForbidden as exc:
        return (
            RenderResult(*problems[0]) if problems else RenderResult("forbidden", short_error(exc))
        )
    except (RecursionError, MemoryError) as exc:
        return RenderResult("too_large", exception_error(exc))
    except Exception as exc:  # malformed CSS, bad encodings...
        if problems:
            return RenderResult(*problems[0])
        return RenderResult("parse_error", exception_error(exc))
    if problems:
        return RenderResult(*problems[0])

    root = tree.xml_tree
    local = root.tag.rsplit("}", 1)[-1] if isinstance(root.tag, str) else ""
    if local != "svg":
        return RenderResult("parse_error", f"root element is <{local}>, not <svg>")
    problem = _scan(root)
    if problem:
        return RenderResult("forbidden", short_error(problem))
    return tree


def _paint(tree, cfg: RenderConfig, problems: list[tuple[str, str]], out_w: int, out_h: int):
    """The tree drawn by cairo at ``out_w`` x ``out_h`` on white, as a result."""
    import cairosvg.surface

    try:
        # White background painted first: the picture is composited on white by cairo itself.
        surface = cairosvg.surface.PNGSurface(
            tree, None, 96, None, cfg.width, cfg.height, 1, out_w, out_h, "white"
        )
        surface.cairo.flush()
        opaque = _opaque_image(surface.cairo)
        rgba = None if opaque is not None else _cairo_pixels(surface.cairo)
    except SvgForbidden as exc:
        return (
            RenderResult(*problems[0]) if problems else RenderResult("forbidden", short_error(exc))
        )
    except MemoryError as exc:
        return RenderResult("memory", exception_error(exc))
    except RecursionError as exc:
        return RenderResult("too_large", exception_error(exc))
    except Exception as exc:
        if problems:
            return RenderResult(*problems[0])
        return RenderResult("runtime_error", exception_error(exc))
    if problems:
        return RenderResult(*problems[0])
    if opaque is not None:
        return encode_rgb(*opaque)
    return finish_rgba(rgba, max(cfg.width, cfg.height))


def _opaque_image(image_surface):
    """(RGB PIL image, its one colour or None) when every pixel of the surface is opaque
    (always, after the white background), in one pass over the pixels; None otherwise."""
    import sys

    import numpy as np
    from PIL import Image

    width, height = image_surface.get_width(), image_surface.get_height()
    stride = image_surface.get_stride()
    if width == 0 or height == 0 or stride % 4:
        return None
    data = bytes(image_surface.get_data())
    # Native-endian ARGB32: alpha is the top byte of each 32-bit pixel.
    px = np.frombuffer(data, np.uint32).reshape(height, stride // 4)[:, :width]
    if px.min() < 0xFF000000:  # some alpha below 255
        return None
    flat = px[0, 0] if (px == px[0, 0]).all() else None
    raw = "BGRX" if sys.byteorder == "little" else "XRGB"
    image = Image.frombuffer("RGB", (width, height), data, "raw", raw, stride, 1)
    if flat is not None:
        flat = (int(flat >> 16) & 255, int(flat >> 8) & 255, int(flat) & 255)
    return image, flat


def _cairo_pixels(image_surface):
    """RGBA array from a cairo ARGB32 surface (native-endian premultiplied BGRA in memory)."""
    import sys

    import numpy as np

    width, height, stride = (
        image_surface.get_width(),
        image_surface.get_height(),
        image_surface.get_stride(),
    )
    buf = np.frombuffer(bytes(image_surface.get_data()), np.uint8).reshape(height, stride)
    px = buf[:, : width * 4].reshape(height, width, 4)
    order = [2, 1, 0, 3] if sys.byteorder == "little" else [1, 2, 3, 0]
    rgba = px[:, :, order]
    # Un-premultiply (only matters where alpha < 255, i.e. never after a white background).
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    if alpha.min() < 255:
        safe = np.maximum(alpha, 1)
        rgb = np.minimum(255, (rgba[:, :, :3].astype(np.uint16) * 255 + safe // 2) // safe)
        rgba = np.concatenate([rgb.astype(np.uint8), rgba[:, :, 3:4]], axis=2)
    return np.ascontiguousarray(rgba)
