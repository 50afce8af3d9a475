"""The warm worker: a fork server started by :class:`~evovlm.sandbox.pool.RenderPool`.

It imports matplotlib, numpy and cairosvg once. Each program gets one fresh forked process that
confines itself (:mod:`evovlm.sandbox.jail`) before its request exists: the worker forks the
next one while the current program runs (or while idle), so a request only has to be handed
over. For each request (a JSON frame on stdin) the worker passes it to the ready process, waits
for its result with the wall-clock deadline, kills its process group, and answers with a result
frame on stdout; reaping and removing the private directory happen after the answer. Python
programs never share an interpreter; SVG documents (data, not code) are rendered one after the
other by one confined SVG process per worker (:meth:`Worker.run_svg`), replaced after a fault.
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
from .jail import BATCH_MARGIN_MB
from .prefault import PAGE
from .protocol import (
    MAX_HEADER,
    MAX_PNG,
    decode_result,
    encode_result,
    read_frame,
    read_response,
    write_all,
    write_frame,
)


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


def _landlock_reads(root: str) -> tuple[str, ...]:
    """What a confined program may still open for reading under the Landlock read rules (with
    its private directory and ``/proc/self``): found by tracing what warm renders open. The
    interpreter's prefixes and import path, matplotlib's data and config, the font folders and
    fontconfig caches, the folders of the shared libraries already loaded (``dlopen`` of an
    extension's dependency), the dynamic loader's cache, zoneinfo, and three devices."""
    import matplotlib
    from matplotlib import font_manager

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(p for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p))
    paths.add(matplotlib.get_data_path())
    paths.add(matplotlib.get_configdir())
    paths.update(os.path.dirname(f.fname) for f in font_manager.fontManager.ttflist)
    paths.update(("/usr/share/fonts", "/usr/local/share/fonts", "/etc/fonts"))
    paths.update(("/var/cache/fontconfig", os.path.join(root, ".cache", "fontconfig")))
    paths.update(("/usr/share/zoneinfo", "/etc/localtime", "/etc/ld.so.cache"))
    paths.update(("/dev/null", "/dev/urandom", "/dev/zero"))
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].startswith("/") and ".so" in fields[5]:
                    paths.add(os.path.dirname(fields[5].strip()))
    except OSError:
        pass
    real = sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})
    # Never the pool's root itself: other workers' programs have their private folders there.
    real = [p for p in real if p != os.path.realpath(root)]
    # Drop what a listed folder already covers.
    return tuple(p for p in real if not any(p.startswith(q.rstrip("/") + "/") for q in real))


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


#: Typical charts for the page probe (our own code, run before any program's).
_PROBE_PROGRAMS = (
    "import matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(figsize=(4, 3))\n"
    "ax.bar(['a', 'b', 'c', 'd', 'e'], [3, 7, 2, 9, 4], color='steelblue')\n"
    "ax.set_title('Probe')\nax.set_ylabel('value')\n",
    "import matplotlib.pyplot as plt\n"
    "plt.plot([1, 2, 3, 4], [2, 5, 3, 6], marker='o', label='line')\n"
    "plt.xlabel('x')\nplt.legend()\nplt.grid(True)\n",
)


def _probe_pages(cfg: RenderConfig, timeout_s: float = 30.0) -> list[tuple[int, int]]:
    """Render :data:`_PROBE_PROGRAMS` in a forked process and return the page ranges it came to
    own (:func:`evovlm.sandbox.prefault.exclusive_ranges`); [] if that fails in any way."""
    import struct

    from .jail import run_python
    from .prefault import exclusive_ranges

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            for code in _PROBE_PROGRAMS:
                run_python(code, cfg, None)
            ranges = exclusive_ranges()
            write_all(write_fd, b"".join(struct.pack("<QQ", a, n) for a, n in ranges))
        finally:
            os._exit(0)
    os.close(write_fd)
    data, late = b"", True
    try:
        data, late = _collect(read_fd, time.monotonic() + timeout_s)
    finally:
        os.close(read_fd)
        if late:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os.waitpid(pid, 0)
    if late or len(data) % 16:
        return []
    return [(a, n) for a, n in struct.iter_unpack("<QQ", data)]


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


class _Child:
    """A forked program process, confined and waiting for its request."""

    def __init__(self, pid: int, private: str, request_fd: int, result_fd: int):
        self.pid, self.private = pid, private
        self.request_fd, self.result_fd = request_fd, result_fd
        self.served = 0  # documents answered (SVG batch processes serve many)


#: SVG statuses after which a batch process carries on with the next document; after any other
#: (a violation ends the process anyway; memory or a crash may leave it in a bad state) the
#: next document gets a fresh process.
_BATCH_KEEPS = frozenset(("ok", "blank_image", "empty", "not_code", "parse_error", "too_large"))
_BATCH_MAX_DOCS = 1000
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_and_size(pid: int) -> tuple[float, int]:
    """(CPU seconds used, address space in bytes) of a child process, from /proc; (inf, 0) when
    it cannot be read (then the child is retired)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        # after the command name: state is field 3; utime, stime 14, 15; vsize 23 (1-based)
        cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        return cpu, int(fields[20])
    except (OSError, IndexError, ValueError):
        return float("inf"), 0


class Worker:
    def __init__(self, cfg: RenderConfig, root: str, landlock_reads: bool = True):
        self.cfg = cfg
        self.root = root
        self.libc = _libc()
        self.netns = False
        from .jail import warm_up

        warm_up(cfg)
        self.read_roots = _read_roots()
        self.landlock_reads = _landlock_reads(root) if landlock_reads else None
        self.base_address_space = _address_space()
        self.count = 0
        self.next: _Child | None = None  # forked ahead, waiting for the next request
        self.done: list[_Child] = []  # answered, still to be reaped
        self.svg: _Child | None = None  # the SVG batch process (see jail.child_main)
        self.svg_used = False  # then a fresh SVG process is forked ahead when idle
        import gc

        gc.collect()
        gc.freeze()  # forked programs then do not touch (copy) the warm heap when collecting
        # The pages a typical render copies from this process (see evovlm.sandbox.prefault):
        # each program's process copies them while it waits, not while the program runs.
        self.prefault = _probe_pages(cfg)

    def isolate_network(self) -> None:
        """A private network namespace (no interfaces up) when the kernel lets us: then even a
        socket that got past every other layer reaches nothing."""
        if self.libc is not None and self.libc.unshare(0x40000000) == 0:  # CLONE_NEWNET
            self.netns = True

    def _fork(self, batch: bool = False) -> _Child:
        from .jail import child_main

        self.count += 1
        private = tempfile.mkdtemp(prefix=f"p{self.count}-", dir=self.root)
        request_r, request_w = os.pipe()
        result_r, result_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the program's process
            try:
                os.close(request_w)
                os.close(result_r)
                child_main(
                    request_r,
                    result_w,
                    self.cfg,
                    private,
                    os.getppid(),
                    self.base_address_space,
                    self.read_roots,
                    self.landlock_reads,
                    self.libc,
                    batch,
                    None if batch else self.prefault,
                )
            finally:
                os._exit(71)
        os.close(request_r)
        os.close(result_w)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        return _Child(pid, private, request_w, result_r)

    @staticmethod
    def _end(child: _Child) -> tuple[int, object]:
        """Kill the child's process group, reap it, remove its folder: (wait status, rusage)."""
        for fd in (child.request_fd, child.result_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            _, status, rusage = os.wait4(child.pid, 0)
        except ChildProcessError:
            status, rusage = 0, None
        shutil.rmtree(child.private, ignore_errors=True)
        return status, rusage

    def idle(self) -> None:
        """Between requests: reap the last program and make sure the next one's process is
        forked (it confines and warms itself on its own), so a request finds it ready."""
        self._reap()
        if self.next is None:
            self.next = self._fork()
        if self.svg is None and self.svg_used:
            self.svg = self._fork(batch=True)

    def _reap(self) -> None:
        while self.done:
            self._end(self.done.pop())

    def close(self) -> None:
        self._reap()
        for child in (self.next, self.svg):
            if child is not None:
                self._end(child)
        self.next = self.svg = None

    def _retire_svg(self) -> None:
        """The SVG process gets no more documents: end of stream (it exits), reaped when idle."""
        child, self.svg = self.svg, None
        if child is not None:
            try:
                os.close(child.request_fd)
            except OSError:
                pass
            child.request_fd = -1
            self.done.append(child)

    def _send(self, child, payload: bytes, batch: bool = False):
        """Hand ``payload`` to the ready process ``child``; when there is none, or it died, end
        it and fork a fresh one (a batch process for SVG). Returns the process that got it."""
        try:
            if child is None:
                raise BrokenPipeError
            write_frame(child.request_fd, payload)
        except OSError:  # none ready, or the ready one died: a fresh one
            if child is not None:
                self._end(child)
            child = self._fork(batch=batch)
            write_frame(child.request_fd, payload)
        return child

    def run_svg(self, code: str | None) -> RenderResult:
        """One SVG document in the SVG batch process, under the same deadline and limits as a
        program of its own. If the process dies or misses the deadline, this document gets the
        status (timeout, memory, crash...) and the next one a fresh process."""
        start = time.perf_counter()
        self.svg_used = True
        self._reap()
        payload = json.dumps({"language": "svg", "code": code}).encode()
        child, self.svg = self.svg, None
        child = self.svg = self._send(child, payload, batch=True)
        deadline = time.monotonic() + self.cfg.timeout_s
        data = read_response(child.result_fd, deadline)
        result = None
        if data is not None:
            try:
                result = decode_result(data)
            except ValueError as exc:
                result = RenderResult("runtime_error", f"unreadable result from program: {exc}")
                data = None
        if data is None:  # dead, late or garbage: this document's status, a fresh process next
            self.svg = None
            late = time.monotonic() >= deadline
            status, rusage = self._end(child)
            if late:
                result = RenderResult("timeout", f"wall clock over {self.cfg.timeout_s:g} s")
            elif result is None:
                result = _exit_result(status, rusage, self.cfg)
        else:
            child.served += 1
            cpu, size = _cpu_and_size(child.pid)
            grown = size - self.base_address_space
            if (
                result.status not in _BATCH_KEEPS
                or child.served >= _BATCH_MAX_DOCS
                or cpu >= self.cfg.cpu_seconds
                or grown >= BATCH_MARGIN_MB * 1024 * 1024
            ):
                self._retire_svg()
        result.render_ms = (time.perf_counter() - start) * 1000.0
        return result

    def run(self, language: str, code: str | None) -> RenderResult:
        if language == "svg":
            return self.run_svg(code)
        start = time.perf_counter()
        self._reap()
        payload = json.dumps({"language": language, "code": code}).encode()
        child, self.next = self.next, None
        child = self._send(child, payload)
        # The next program's process forks and confines itself while this one runs.
        self.next = self._fork()
        data, timed_out = _collect(child.result_fd, time.monotonic() + self.cfg.timeout_s)
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
        if data and not timed_out:
            self.done.append(child)  # reaped while idle, after the answer has gone
        else:
            status, rusage = self._end(child)
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
    worker = Worker(cfg, setup["root"], landlock_reads=bool(setup.get("landlock_reads", True)))
    worker.isolate_network()
    from .jail import landlock_abi

    abi = landlock_abi(worker.libc)
    if abi < 1:
        print(
            "render worker: this kernel has no Landlock: writes outside a program's private "
            "folder and reads outside the interpreter, fonts and caches are refused by the "
            "Python audit hook only (a program that defeats it in memory can read any file "
            "this user can)",
            file=sys.stderr,
            flush=True,
        )
    hello = {
        "pid": os.getpid(),
        "netns": worker.netns,
        "seccomp": cfg.seccomp,
        "landlock": abi,
        "landlock_reads": abi >= 1 and worker.landlock_reads is not None,
        "prefault_pages": sum(n for _, n in worker.prefault) // PAGE,
    }
    write_all(proto_out, encode_result(RenderResult("ok", json.dumps(hello))))
    try:
        while True:
            worker.idle()
            frame = read_frame(proto_in, 1 << 30)
            if frame is None:
                return
            request = json.loads(frame)
            try:
                result = worker.run(request["language"], request["code"])
            except Exception as exc:  # noqa: BLE001 - the worker must keep answering
                result = RenderResult("runtime_error", f"worker error: {type(exc).__name__}: {exc}")
            write_all(proto_out, encode_result(result))
    finally:
        worker.close()
