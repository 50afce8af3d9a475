"""The warm worker: a fork server started by :class:`~evovlm.sandbox.pool.RenderPool`.

It imports matplotlib, numpy and cairosvg once, then for each request (a JSON frame on stdin)
forks one fresh process that confines itself (:mod:`evovlm.sandbox.jail`) and renders, waits
for its result with the wall-clock deadline, kills its process group, removes its private
directory, and answers with a result frame on stdout. Programs never share an interpreter.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time

from .config import RenderConfig, RenderResult
from .protocol import MAX_HEADER, MAX_PNG, decode_result, encode_result, read_frame, write_all


def _address_space() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _read_roots() -> tuple[str, ...]:
    import matplotlib
    from matplotlib import font_manager

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(p for p in sys.path if p and os.path.isdir(p))
    roots.add(matplotlib.get_data_path())
    roots.add(matplotlib.get_configdir())
    roots.update(os.path.dirname(f.fname) for f in font_manager.fontManager.ttflist)
    roots.update(("/usr/share/fonts", "/usr/local/share/fonts", "/etc/fonts"))
    roots.update(("/usr/share/zoneinfo", "/dev/null", "/dev/urandom", "/dev/zero"))
    return tuple(sorted(r for r in roots if r))


def _libc():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _collect(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything the program writes until it closes the pipe, or (partial, True) at the
    deadline. Over-long output is cut (the decoder then rejects it)."""
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        if size < MAX_HEADER + MAX_PNG + 16:
            chunks.append(chunk)
            size += len(chunk)


def _exit_result(status: int, rusage, cfg: RenderConfig) -> RenderResult:
    cpu = rusage.ru_utime + rusage.ru_stime
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= cfg.cpu_seconds - 0.05):
            return RenderResult("timeout", f"CPU limit of {cfg.cpu_seconds} s")
        if sig == signal.SIGKILL:
            return RenderResult("memory", "killed (out of memory)")
        if sig == signal.SIGSYS:
            return RenderResult("forbidden", "killed by the seccomp filter")
        if sig == signal.SIGXFSZ:
            return RenderResult("too_large", "file size limit")
        return RenderResult("runtime_error", f"program crashed ({name})")
    return RenderResult(
        "runtime_error", f"program exited with code {os.WEXITSTATUS(status)} before a result"
    )


class Worker:
    def __init__(self, cfg: RenderConfig, root: str):
        self.cfg = cfg
        self.root = root
        self.libc = _libc()
        self.netns = False
        from .jail import warm_up

        warm_up(cfg)
        self.read_roots = _read_roots()
        self.base_address_space = _address_space()
        self.count = 0
        import gc

        gc.collect()
        gc.freeze()  # forked programs then do not touch (copy) the warm heap when collecting

    def isolate_network(self) -> None:
        """A private network namespace (no interfaces up) when the kernel lets us: then even a
        socket that got past every other layer reaches nothing."""
        if self.libc is not None and self.libc.unshare(0x40000000) == 0:  # CLONE_NEWNET
            self.netns = True

    def run(self, language: str, code: str | None) -> RenderResult:
        from .jail import child_main

        start = time.perf_counter()
        self.count += 1
        private = tempfile.mkdtemp(prefix=f"p{self.count}-", dir=self.root)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the program's process
            try:
                os.close(read_fd)
                child_main(
                    language,
                    code,
                    self.cfg,
                    private,
                    write_fd,
                    os.getppid(),
                    self.base_address_space,
                    self.read_roots,
                    self.libc,
                )
            finally:
                os._exit(71)
        os.close(write_fd)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        try:
            data, timed_out = _collect(read_fd, time.monotonic() + self.cfg.timeout_s)
        finally:
            os.close(read_fd)
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            _, status, rusage = os.wait4(pid, 0)
            shutil.rmtree(private, ignore_errors=True)
        if timed_out:
            result = RenderResult("timeout", f"wall clock over {self.cfg.timeout_s:g} s")
        else:
            try:
                result = decode_result(data) if data else _exit_result(status, rusage, self.cfg)
            except ValueError as exc:
                result = RenderResult("runtime_error", f"unreadable result from program: {exc}")
        result.render_ms = (time.perf_counter() - start) * 1000.0
        return result


def main() -> None:
    """Speak the frame protocol on fds 0/1; everything else printed goes to stderr."""
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # stray prints (warnings, font cache notes) go to the log, not the protocol
    first = read_frame(proto_in, MAX_HEADER)
    if first is None:
        return
    setup = json.loads(first)
    cfg = RenderConfig.from_dict(setup["config"])
    worker = Worker(cfg, setup["root"])
    worker.isolate_network()
    from .jail import landlock_abi

    hello = {
        "pid": os.getpid(),
        "netns": worker.netns,
        "seccomp": cfg.seccomp,
        "landlock": landlock_abi(worker.libc),
    }
    write_all(proto_out, encode_result(RenderResult("ok", json.dumps(hello))))
    while True:
        frame = read_frame(proto_in, 1 << 30)
        if frame is None:
            return
        request = json.loads(frame)
        try:
            result = worker.run(request["language"], request["code"])
        except Exception as exc:  # noqa: BLE001 - the worker must keep answering
            result = RenderResult("runtime_error", f"worker error: {type(exc).__name__}: {exc}")
        write_all(proto_out, encode_result(result))
