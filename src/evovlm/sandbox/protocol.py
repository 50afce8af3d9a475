"""Length-prefixed frames over pipes: 4-byte big-endian length, then the payload.

Only JSON headers and raw PNG bytes travel this way; nothing is unpickled, so a tampered
worker or program can at worst send a wrong result for its own program."""

from __future__ import annotations

import json
import os
import select
import struct
import time

from .config import RenderResult

_LEN = struct.Struct(">I")
MAX_HEADER = 1 << 20
MAX_PNG = 64 << 20


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_frame(fd: int, payload: bytes) -> None:
    write_all(fd, _LEN.pack(len(payload)) + payload)


def read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int) -> bytes | None:
    """One frame, or None at end of stream; ValueError when longer than ``limit``."""
    head = read_exact(fd, _LEN.size)
    if head is None:
        return None
    (n,) = _LEN.unpack(head)
    if n > limit:
        raise ValueError(f"frame of {n} bytes over the limit of {limit}")
    return read_exact(fd, n)


def read_response(fd: int, deadline: float) -> bytes | None:
    """One encoded result (header frame + PNG frame) as :func:`encode_result` writes it, or
    None at end of stream, at the ``time.monotonic()`` deadline or when oversize."""
    buf = bytearray()

    def fill(n: int) -> bool:
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, n - len(buf))
                if not chunk:
                    return False
                buf.extend(chunk)
        return True

    if not fill(4):
        return None
    (n,) = _LEN.unpack_from(buf, 0)
    if n > MAX_HEADER or not fill(4 + n + 4):
        return None
    (m,) = _LEN.unpack_from(buf, 4 + n)
    if m > MAX_PNG or not fill(8 + n + m):
        return None
    return bytes(buf)


def encode_result(result: RenderResult) -> bytes:
    header = {
        "status": result.status,
        "error": result.error,
        "width": result.width,
        "height": result.height,
        "render_ms": result.render_ms,
    }
    png = result.png or b""
    head = json.dumps(header).encode()
    return _LEN.pack(len(head)) + head + _LEN.pack(len(png)) + png


def decode_result(data: bytes) -> RenderResult:
    """Inverse of :func:`encode_result`; ValueError on anything malformed."""
    if len(data) < _LEN.size:
        raise ValueError("short result")
    (n,) = _LEN.unpack_from(data, 0)
    if n > MAX_HEADER or len(data) < 4 + n + 4:
        raise ValueError("bad result header")
    header = json.loads(data[4 : 4 + n])
    (m,) = _LEN.unpack_from(data, 4 + n)
    png = data[8 + n : 8 + n + m]
    if m > MAX_PNG or len(png) != m or len(data) != 8 + n + m:
        raise ValueError("bad result image")
    if not isinstance(header, dict):
        raise ValueError("bad result header")
    result = RenderResult(
        status=str(header.get("status")),
        error=None if header.get("error") is None else str(header.get("error"))[:1000],
        png=png or None,
        width=header.get("width"),
        height=header.get("height"),
        render_ms=float(header.get("render_ms") or 0.0),
    )
    for dim in (result.width, result.height):
        if dim is not None and (not isinstance(dim, int) or not 0 <= dim <= 1 << 16):
            raise ValueError("bad result size")
    return result
