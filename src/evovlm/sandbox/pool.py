"""Host side: a pool of warm worker processes (fork servers, see :mod:`evovlm.sandbox.worker`).

Each worker is started with ``python -I`` (no user site, no PYTHON* variables), a scrubbed
environment (PATH, HOME, LANG, MPLCONFIGDIR, MPLBACKEND=Agg, single-threaded BLAS; no tokens or
keys), in a new session (``start_new_session=True``: its process group is ``os.killpg``-ed
whole), with a private temporary root. A worker that does not answer within the program
timeout plus a grace period, dies, or answers garbage is killed and replaced on next use.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from .config import LANGUAGES, RenderConfig, RenderResult
from .protocol import decode_result, read_response, write_frame

_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); from evovlm.sandbox.worker import main; main()"
)
_GRACE_S = 20.0  # on top of the program timeout: fork, cleanup, a slow machine
_START_TIMEOUT_S = 180.0  # first start builds matplotlib's font cache


def _scrubbed_env(root: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": root,
        "TMPDIR": root,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLCONFIGDIR": os.path.join(root, "mplconfig"),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


class _Handle:
    """One warm worker process."""

    def __init__(self, cfg: RenderConfig, root: str, landlock_reads: bool = True):
        import evovlm

        src = os.path.dirname(os.path.dirname(os.path.abspath(evovlm.__file__)))
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, src],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_scrubbed_env(root),
            cwd=root,
            start_new_session=True,
            close_fds=True,
        )
        self.info: dict = {}
        setup = {"config": cfg.to_dict(), "root": root, "landlock_reads": landlock_reads}
        try:
            write_frame(self.proc.stdin.fileno(), json.dumps(setup).encode())
            hello = read_response(self.proc.stdout.fileno(), time.monotonic() + _START_TIMEOUT_S)
            if hello is None:
                raise RuntimeError("render worker did not start (see the log above)")
            self.info = json.loads(decode_result(hello).error or "{}")
        except BaseException:
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, language: str, code: str | None, deadline: float) -> RenderResult | None:
        """The worker's result, or None if the worker failed (then it has been killed)."""
        try:
            payload = json.dumps({"language": language, "code": code}).encode()
            write_frame(self.proc.stdin.fileno(), payload)
            data = read_response(self.proc.stdout.fileno(), deadline)
            if data is not None:
                return decode_result(data)
        except (OSError, ValueError):
            pass
        self.kill()
        return None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc.wait()

    def close(self, timeout: float = 5.0) -> None:
        try:
            self.proc.stdin.close()  # EOF: the worker returns
            self.proc.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()  # and anything left in its process group


class RenderPool:
    """Warm sandboxed workers rendering SVG and Python (matplotlib) programs.

    ``landlock_reads=False`` leaves file reads to the audit hook alone (for tests that show
    what the kernel's read rules add); keep the default otherwise.

    Thread-safe: ``render`` may be called from up to ``workers`` threads at once. Use as a
    context manager (or call :meth:`close`): no process outlives the pool.
    """

    def __init__(
        self,
        cfg: RenderConfig | None = None,
        workers: int | None = None,
        *,
        landlock_reads: bool = True,
    ):
        self.cfg = cfg or RenderConfig()
        self.landlock_reads = landlock_reads
        n = workers if workers is not None else (self.cfg.workers or 1)
        self.workers = max(1, int(n))
        self.root = tempfile.mkdtemp(prefix="evovlm-render-")
        os.makedirs(os.path.join(self.root, "mplconfig"), exist_ok=True)
        self.restarts = 0
        self._lock = threading.Lock()
        self._handles: list[_Handle] = []
        self._free: queue.Queue[_Handle | None] = queue.Queue()
        self._closed = False
        try:
            first = _Handle(
                self.cfg, self.root, self.landlock_reads
            )  # builds the font cache once for all
            self._handles.append(first)
            self._free.put(first)
            for _ in range(self.workers - 1):
                self._free.put(None)  # started lazily
        except BaseException:
            self.close()
            raise

    @property
    def info(self) -> dict:
        """What the first worker reported (pid, netns: private network namespace, seccomp, landlock:
        the kernel's Landlock ABI, 0 = none; landlock_reads: file reads confined by the kernel
        too)."""
        return dict(self._handles[0].info) if self._handles else {}

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [h.pid for h in self._handles if h.alive()]

    def _new_handle(self) -> _Handle:
        handle = _Handle(self.cfg, self.root, self.landlock_reads)
        with self._lock:
            self._handles.append(handle)
        return handle

    def _drop(self, handle: _Handle) -> None:
        with self._lock:
            if handle in self._handles:
                self._handles.remove(handle)
            self.restarts += 1

    def render(self, code: str | None, language: str = "python") -> RenderResult:
        """Render one program; never raises for anything the program does."""
        if self._closed:
            raise RuntimeError("RenderPool is closed")
        if language not in LANGUAGES:
            return RenderResult("not_code", f"unknown language {language!r}")
        if code is None or not str(code).strip():
            return RenderResult("empty", "empty code")
        if len(code) > self.cfg.max_code_chars:
            return RenderResult(
                "too_large", f"code longer than {self.cfg.max_code_chars} characters"
            )
        handle = self._free.get()
        start = time.perf_counter()
        try:
            if handle is None or not handle.alive():
                if handle is not None:
                    self._drop(handle)
                handle = self._new_handle()
            deadline = time.monotonic() + self.cfg.timeout_s + _GRACE_S
            result = handle.request(language, code, deadline)
            if result is None:  # the worker itself failed: killed, replaced on next use
                self._drop(handle)
                handle = None
                late = time.monotonic() >= deadline
                result = RenderResult(
                    "timeout" if late else "runtime_error",
                    "worker stopped answering" if late else "worker died",
                    render_ms=(time.perf_counter() - start) * 1000.0,
                )
            return result
        except Exception as exc:  # noqa: BLE001 - e.g. a worker that cannot start
            if handle is not None:
                handle.kill()
                self._drop(handle)
                handle = None
            return RenderResult("runtime_error", f"render worker failed: {exc}")
        finally:
            self._free.put(handle)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            handles = list(self._handles)
            self._handles.clear()
        for handle in handles:
            handle.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


PythonRenderPool = RenderPool
