"""What runs inside one program's process (forked from a warm worker), before and after the
untrusted code: limits, Landlock, seccomp, audit hook, then the program and the figure capture.

Layers, outermost first:

1. OS: own process group (killed whole on timeout), ``PR_SET_PDEATHSIG`` (dies with its
   worker), rlimits (CPU, address space, file size, core, open files, and RLIMIT_NPROC when not
   root), stdio on /dev/null, only its result pipe open, a private working directory,
   the worker's scrubbed environment.
2. Landlock (Linux 5.13+): the kernel refuses every write and every execve outside the
   private directory and, unless switched off, every open for reading outside the allow list
   the worker traced (:func:`evovlm.sandbox.worker._landlock_reads`), with EACCES, whatever the
   program does to Python-level state.
3. seccomp (Linux x86_64/aarch64, built by hand, no libseccomp): fork/vfork/exec, sockets,
   kill/tkill/tgkill of other processes, setsid/setpgid, ptrace, unshare/setns/mount fail with
   EPERM; threads are still allowed.
4. Python audit hook (cannot be removed): process creation, sockets, signals to other
   processes, ctypes, rlimit changes, gc object-graph walks, opening files for writing outside
   the private directory, reading files outside the interpreter, font and private directories.
   Any of them makes the status ``forbidden``, even if the program catches the exception.
   Plus module patches for what has no audit event (signal handlers, setsid, fchmod...).

Layer 4 is Python-level: a program can reach its state through its frames, or corrupt
interpreter memory; layers 1-3 still hold then. Without Landlock, reads and writes outside
the private directory are guarded by layer 4 only.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import re
import resource
import signal
import stat
import struct
import sys
import time

from .config import RenderConfig, RenderResult, exception_error, finish_rgba, short_error
from .protocol import encode_result, read_frame, write_all


class SandboxViolation(PermissionError):
    """Raised by the audit hook; the program's status becomes ``forbidden``."""


# ---------------------------------------------------------------- seccomp

_SYSCALLS = {
    # arch: (audit arch, denied syscalls, clone, clone3, tgkill)
    "x86_64": (
        0xC000003E,
        # fork vfork execve execveat socket socketpair connect bind kill tkill ptrace setsid
        # setpgid process_vm_readv/writev unshare setns mount umount2 pidfd_send_signal
        # pidfd_open chroot pivot_root
        (57, 58, 59, 322, 41, 53, 42, 49, 62, 200, 101, 112, 109, 310, 311, 272, 308, 165, 166)
        + (424, 434, 161, 155),
        56,
        435,
        234,
    ),
    "aarch64": (
        0xC00000B7,
        (221, 281, 198, 199, 203, 200, 129, 130, 117, 157, 154, 270, 271, 97, 268, 40, 39)
        + (424, 434, 51, 41),
        220,
        435,
        131,
    ),
}


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_program(pid: int, machine: str | None = None) -> bytes | None:
    """The BPF filter for this machine (None when unsupported)."""
    spec = _SYSCALLS.get(machine or os.uname().machine)
    if spec is None:
        return None
    arch, denied, clone, clone3, tgkill = spec
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill_process = 0x7FFF0000, 0x80000000

    def err(e: int) -> int:
        return 0x00050000 | e

    prog = [_bpf(ld, 0, 0, 4), _bpf(jeq, 1, 0, arch), _bpf(ret, 0, 0, kill_process)]
    prog.append(_bpf(ld, 0, 0, 0))
    if machine in (None, "x86_64") and arch == 0xC000003E:  # x32 ABI numbers
        prog += [_bpf(jge, 0, 1, 0x40000000), _bpf(ret, 0, 0, err(errno.EPERM))]
    for nr in denied:
        prog += [_bpf(jeq, 0, 1, nr), _bpf(ret, 0, 0, err(errno.EPERM))]
    # clone3 hides its flags in memory: ENOSYS makes glibc fall back to clone.
    prog += [_bpf(jeq, 0, 1, clone3), _bpf(ret, 0, 0, err(errno.ENOSYS))]
    # clone: threads only (CLONE_THREAD set in the flags, argument 0).
    prog += [_bpf(jeq, 0, 4, clone), _bpf(ld, 0, 0, 16), _bpf(jset, 1, 0, 0x10000)]
    prog += [_bpf(ret, 0, 0, err(errno.EPERM)), _bpf(ret, 0, 0, allow)]
    # tgkill: only to itself (abort(), raise()).
    prog += [_bpf(jeq, 0, 3, tgkill), _bpf(ld, 0, 0, 16), _bpf(jeq, 1, 0, pid)]
    prog += [_bpf(ret, 0, 0, err(errno.EPERM))]
    prog.append(_bpf(ret, 0, 0, allow))
    return b"".join(prog)


def install_seccomp(libc) -> bool:
    """Install the filter in this process; False when the kernel or machine does not allow it."""
    import ctypes

    prog = seccomp_program(os.getpid())
    if prog is None or libc is None:
        return False

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = SockFprog(len(prog) // 8, ctypes.addressof(buf))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER


# ---------------------------------------------------------------- Landlock

# Landlock syscalls (the same numbers on every architecture) and filesystem rights.
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_EXECUTE, _LANDLOCK_READ_FILE, _LANDLOCK_READ_DIR = 1 << 0, 1 << 2, 1 << 3
_LANDLOCK_READ_RIGHTS = _LANDLOCK_READ_FILE | _LANDLOCK_READ_DIR
_LANDLOCK_WRITE_RIGHTS = {
    1: sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12)),  # write, remove, make *
    2: 1 << 13,  # refer (rename/link across directories)
    3: 1 << 14,  # truncate
}
# Rights a rule on a regular file (not a directory) may carry.
_LANDLOCK_FILE_RIGHTS = _LANDLOCK_EXECUTE | (1 << 1) | _LANDLOCK_READ_FILE | (1 << 14)


def landlock_abi(libc) -> int:
    """The kernel's Landlock ABI version, 0 when there is none."""
    if libc is None:
        return 0
    abi = libc.syscall(_LANDLOCK_CREATE_RULESET, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    return max(0, int(abi))


def install_landlock(libc, writable: str, readable: tuple[str, ...] | None = None) -> bool:
    """Let the kernel refuse, for this process and its threads, every write outside
    ``writable`` and every execve; with ``readable``, also every open for reading outside
    ``writable`` and the folders and files listed there. Enforced below Python, so no trick
    inside the program (frames, closures, the audit hook's state) can widen it. Files opened
    before the call stay open. False when the kernel has no Landlock."""
    import ctypes

    abi = landlock_abi(libc)
    if abi < 1:
        return False
    write = sum(bits for version, bits in _LANDLOCK_WRITE_RIGHTS.items() if version <= abi)
    handled = write | _LANDLOCK_EXECUTE | (_LANDLOCK_READ_RIGHTS if readable is not None else 0)

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("handled_access_fs", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(handled)
    ruleset = libc.syscall(_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        return False

    def allow(path: str, rights: int) -> bool:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return False  # absent here: nothing to allow
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                rights &= _LANDLOCK_FILE_RIGHTS
            rule = PathBeneath(rights, fd)  # 1 = LANDLOCK_RULE_PATH_BENEATH
            return libc.syscall(_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) == 0
        finally:
            os.close(fd)

    try:
        private = write | (_LANDLOCK_READ_RIGHTS if readable is not None else 0)
        if not allow(writable, private):
            return False
        for path in readable or ():
            allow(path, _LANDLOCK_READ_RIGHTS)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            return False
        return libc.syscall(_LANDLOCK_RESTRICT_SELF, ruleset, 0) == 0
    finally:
        os.close(ruleset)


# ---------------------------------------------------------------- audit hook

_DENIED_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.exec",
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.spawn",
    "os.system",
    "os.kill",
    "os.killpg",
    "os.startfile",
    "os.link",
    "os.symlink",
    "ctypes.",
    "pty.",
    "resource.setrlimit",
    "resource.prlimit",
    "sys.addaudithook",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "webbrowser.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "imaplib.",
    "poplib.",
    "nntplib.",
    "telnetlib.",
    "sqlite3.",
    "syslog.",
    "fcntl.ioctl",
    "signal.pthread_kill",
)
_DENIED_IMPORTS = frozenset(
    ("ctypes", "_ctypes", "_posixsubprocess", "pty", "_sqlite3", "_dbm", "_gdbm", "resource")
)
# Events whose path arguments are written: allowed inside the private directory only.
_WRITE_EVENTS = {
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "os.chflags": (0,),
    "shutil.rmtree": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class AuditState:
    def __init__(self, private_dir: str, read_roots: tuple[str, ...]):
        self.private_dir = os.path.realpath(private_dir)
        self.read_roots = tuple(os.path.realpath(r) for r in read_roots) + (self.private_dir,)
        self.violation: str | None = None
        self.inert: set[str] = set()  # event names no rule applies to (see hook)
        # In the program's process: called with the first violation, reports it and ends the
        # process, so the program never gets to catch the denial and undo this state.
        self.on_violation = None

    def deny(self, what: str):
        if self.violation is None:
            self.violation = short_error(what)
        if self.on_violation is not None:
            self.on_violation(self.violation)
        raise SandboxViolation(f"forbidden in the sandbox: {what}")

    @staticmethod
    def _under(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def _path(self, value) -> str | None:
        if isinstance(value, int) or value is None:
            return None  # an already-open file descriptor
        try:
            return os.path.realpath(os.fsdecode(value))
        except (TypeError, ValueError):
            return "?"

    def hook(self, event: str, args: tuple) -> None:
        # Most events no rule looks at, and that is decided by the name alone: matplotlib raises
        # ~2,500 `builtins.id` events per figure. Such names are remembered and skipped at once.
        if event in self.inert:
            return
        if event == "open":
            path = self._path(args[0])
            if path is None:
                return
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = bool(flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+")
            )
            if writing:
                if not self._under(path, (self.private_dir,)):
                    self.deny(f"writing {path[:120]}")
            elif not self._under(path, self.read_roots):
                self.deny(f"reading {path[:120]}")
        elif event in _WRITE_EVENTS:
            for i in _WRITE_EVENTS[event]:
                if i < len(args):
                    path = self._path(args[i])
                    if path is not None and not self._under(path, (self.private_dir,)):
                        self.deny(f"{event} {path[:120]}")
        elif event == "import":
            if args and str(args[0]).split(".")[0] in _DENIED_IMPORTS:
                self.deny(f"import {args[0]}")
        elif event.startswith(_DENIED_PREFIXES):
            self.deny(event)
        else:
            self.inert.add(event)


def _forbidden_function(name: str, state: AuditState):
    def forbidden(*args, **kwargs):
        state.deny(name)

    forbidden.__name__ = name.rsplit(".", 1)[-1]
    return forbidden


def _patch_modules(state: AuditState) -> None:
    """What has no audit event: replace it, and drop modules whose re-import we refuse."""
    import _signal

    for name in (
        "signal",
        "alarm",
        "setitimer",
        "siginterrupt",
        "pthread_sigmask",
        "set_wakeup_fd",
        "sigwait",
    ):
        for module in (signal, _signal):
            if hasattr(module, name):
                setattr(module, name, _forbidden_function(f"signal.{name}", state))
    posix = sys.modules.get("posix")
    for name in (
        "setsid",
        "setpgid",
        "setpgrp",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "setgroups",
        "mkfifo",
        "mknod",
        "chroot",
        "fchmod",
        "fchown",
        "register_at_fork",
        "putenv",
    ):
        for module in (os, posix):
            if module is not None and hasattr(module, name):
                setattr(module, name, _forbidden_function(f"os.{name}", state))
    sub = sys.modules.get("_posixsubprocess")
    if sub is not None:
        sub.fork_exec = _forbidden_function("_posixsubprocess.fork_exec", state)
    for name in list(sys.modules):
        if name.split(".")[0] in _DENIED_IMPORTS:
            del sys.modules[name]


# ---------------------------------------------------------------- limits

_MB = 1024 * 1024


def _uid_tasks(uid: int) -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                text = fh.read()
        except OSError:
            continue
        uid_line = re.search(r"^Uid:\s+(\d+)", text, re.M)
        threads = re.search(r"^Threads:\s+(\d+)", text, re.M)
        if uid_line and int(uid_line.group(1)) == uid:
            total += int(threads.group(1)) if threads else 1
    return total


#: An SVG batch process (see :func:`child_main`) gets this much more address space and twice the
#: CPU seconds; its worker retires it once it has used ``cpu_seconds`` of CPU or grown this
#: much, so every document it starts still has at least one program's limits ahead of it.
BATCH_MARGIN_MB = 256


def set_limits(cfg: RenderConfig, base_address_space: int, batch: bool = False) -> None:
    def limit(which: int, value: int, hard: int | None = None) -> None:
        try:
            resource.setrlimit(which, (value, value if hard is None else hard))
        except (ValueError, OSError):
            pass

    cpu = int(cfg.cpu_seconds) * (2 if batch else 1)
    limit(resource.RLIMIT_CPU, cpu, cpu + 1)
    margin = BATCH_MARGIN_MB * _MB if batch else 0
    limit(resource.RLIMIT_AS, base_address_space + int(cfg.memory_mb) * _MB + margin)
    limit(resource.RLIMIT_FSIZE, int(cfg.max_file_mb * _MB))
    limit(resource.RLIMIT_CORE, 0)
    limit(resource.RLIMIT_NOFILE, 256)
    if os.geteuid() != 0:  # root ignores RLIMIT_NPROC; it counts the whole user otherwise
        try:
            limit(resource.RLIMIT_NPROC, _uid_tasks(os.getuid()) + int(cfg.max_processes))
        except OSError:
            pass


# ---------------------------------------------------------------- Python programs

_PY_LINE = re.compile(
    r"^\s*(import\s+\w|from\s+[\w.]+\s+import\b|def\s+\w+\s*\(|class\s+\w+|for\s+\w.*\bin\b"
    r"|while\b|if\b.*:|elif\b|else\s*:|with\b|return\b|try\s*:|except\b|print\s*\("
    r"|[A-Za-z_][\w.]*\s*(\[[^\]]*\])?\s*[-+*/%|&]?=[^=]|[A-Za-z_][\w.]*\s*\(.*\)\s*$)",
    re.M,
)


def looks_like_python(code: str) -> bool:
    """False for text that clearly is not Python (prose, markup, binary garbage)."""
    if "\x00" in code or code.lstrip().startswith("<"):
        return False
    return bool(_PY_LINE.search(code))


def classify_exception(exc: BaseException, state: AuditState | None) -> RenderResult:
    if state is not None and state.violation is not None:
        return RenderResult("forbidden", state.violation)
    if isinstance(exc, SandboxViolation):
        return RenderResult("forbidden", exception_error(exc))
    if isinstance(exc, MemoryError):
        return RenderResult("memory", exception_error(exc))
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return RenderResult("too_large", f"file size limit: {exception_error(exc)}")
    return RenderResult("runtime_error", exception_error(exc))


def run_python(code: str | None, cfg: RenderConfig, state: AuditState | None) -> RenderResult:
    """Compile and run ``code``, then draw the current figure (else the last one the program
    saved or showed) at ``cfg.dpi``, composited on white."""
    if code is None or not code.strip():
        return RenderResult("empty", "empty code")
    if len(code) > cfg.max_code_chars:
        return RenderResult("too_large", f"code longer than {cfg.max_code_chars} characters")
    try:
        compiled = compile(code, "<program>", "exec")
    except (SyntaxError, ValueError) as exc:
        status = "parse_error" if looks_like_python(code) else "not_code"
        return RenderResult(status, exception_error(exc))
    except (MemoryError, RecursionError) as exc:
        return RenderResult("parse_error", exception_error(exc))

    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    shown: list = []
    original_savefig = Figure.savefig

    def savefig(self, *args, **kwargs):
        shown.append(self)
        return original_savefig(self, *args, **kwargs)

    def show(*args, **kwargs):
        if plt.get_fignums():
            shown.append(plt.gcf())

    Figure.savefig = savefig
    plt.show = show
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compiled, namespace)
    except SystemExit:
        pass
    except BaseException as exc:
        return classify_exception(exc, state)
    if state is not None and state.violation is not None:
        return RenderResult("forbidden", state.violation)
    try:
        figure = plt.gcf() if plt.get_fignums() else (shown[-1] if shown else None)
        if figure is None:
            return RenderResult("blank_image", "no figure")
        return _draw(figure, cfg)
    except BaseException as exc:
        return classify_exception(exc, state)


def _draw(figure, cfg: RenderConfig) -> RenderResult:
    import math

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    w_in, h_in = (float(v) for v in figure.get_size_inches())
    if not (math.isfinite(w_in) and math.isfinite(h_in)) or w_in <= 0 or h_in <= 0:
        return RenderResult("too_large", f"figure size {w_in:g}x{h_in:g} in")
    if max(w_in, h_in) > cfg.max_figure_inches:
        return RenderResult(
            "too_large",
            f"figure size {w_in:g}x{h_in:g} in over max_figure_inches {cfg.max_figure_inches:g}",
        )
    if max(w_in, h_in) / min(w_in, h_in) > cfg.max_aspect:
        return RenderResult("too_large", f"figure aspect {w_in:g}x{h_in:g} over max_aspect")
    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(cfg.dpi)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return finish_rgba(rgba, int(math.ceil(cfg.max_figure_inches * cfg.dpi)) + 1)


# ---------------------------------------------------------------- the forked process


def child_main(
    request_fd: int,
    result_fd: int,
    cfg: RenderConfig,
    private_dir: str,
    worker_pid: int,
    base_address_space: int,
    read_roots: tuple[str, ...],
    landlock_reads: tuple[str, ...] | None,
    libc,
    batch: bool = False,
    prefault: list[tuple[int, int]] | None = None,
) -> None:
    """Entry of the forked process; never returns.

    The worker forks it ahead of time (while idle): it confines itself completely, then waits
    for one request (a JSON frame ``{"language", "code"}`` on ``request_fd``), runs it and
    writes the encoded result to ``result_fd``. End of stream on ``request_fd``: it just exits.
    ``landlock_reads``: the folders and files it may still open for reading (None: reads are
    left to the audit hook).

    ``batch``: an SVG process. SVG is data, not code (nothing in it runs in the interpreter),
    so one such process renders SVG documents one after the other, each answered with its own
    result frame, under the same confinement, until its worker closes ``request_fd`` (the
    worker retires it after a fault, a violation, or once it has used its budget; see
    :data:`BATCH_MARGIN_MB`). A violation still ends the process at once.

    ``prefault``: page ranges it copies from the worker while it waits
    (:mod:`evovlm.sandbox.prefault`), so the program does not take those faults itself."""
    try:
        _detach(request_fd, result_fd, private_dir, worker_pid, libc)
        _confine(cfg, private_dir, base_address_space, landlock_reads, libc, batch)
        state = AuditState(private_dir, read_roots)
        state.on_violation = lambda message: _report_and_exit(result_fd, message)
        _patch_modules(state)
        if batch:
            import gc

            from .svg import render_svg  # noqa: F401

            # cairosvg makes many short-lived objects: collecting the youngest generation every
            # 20,000 instead of 700 allocations saves ~9 % of the CPU; cycles are still collected.
            gc.set_threshold(20_000)
        if prefault:
            from .prefault import populate

            populate(libc, prefault)
        _serve(request_fd, result_fd, cfg, state, batch)
    except BaseException as exc:  # the harness itself failed: still report something
        try:
            write_all(result_fd, encode_result(classify_exception(exc, None)))
        except BaseException:
            pass
    os._exit(0)


def _detach(request_fd: int, result_fd: int, private_dir: str, worker_pid: int, libc) -> None:
    """Leave the worker's process group, die with it, and keep only the two pipes open, with
    the private folder as home, working and temporary folder."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    if libc is not None:
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != worker_pid:
        os._exit(70)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    low, high = sorted((request_fd, result_fd))
    os.closerange(3, low)
    os.closerange(low + 1, high)
    os.closerange(high + 1, 1 << 16)
    os.chdir(private_dir)
    os.environ.update(HOME=private_dir, TMPDIR=private_dir)
    import tempfile

    tempfile.tempdir = private_dir


def _confine(cfg: RenderConfig, private_dir: str, address_space: int, reads, libc, batch: bool):
    """Resource limits, Landlock (``reads``: what it may still open for reading, None: any
    file) and seccomp."""
    set_limits(cfg, address_space, batch)  # reads /proc: before the Landlock rules
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death: too_large
    readable = None if reads is None else (*reads, "/proc/self")
    install_landlock(libc, private_dir, readable)
    if cfg.seccomp:
        install_seccomp(libc)


def _report_and_exit(result_fd: int, message: str) -> None:
    write_all(result_fd, encode_result(RenderResult("forbidden", message)))
    os._exit(0)


def _serve(request_fd: int, result_fd: int, cfg: RenderConfig, state: AuditState, batch: bool):
    """Answer requests until end of stream (``batch``) or after the first one."""
    hooked = False
    while True:
        frame = read_frame(request_fd, 1 << 30)  # confined and idle until the request
        if frame is None:
            os._exit(0)
        if not batch:
            os.close(request_fd)
        start = time.perf_counter()
        request = json.loads(frame)
        language, code = request["language"], request["code"]
        del frame, request
        if not hooked:
            sys.addaudithook(state.hook)
            hooked = True
        result = _render(language, code, cfg, state, batch)
        del code
        result.render_ms = (time.perf_counter() - start) * 1000.0
        if result.status != "ok":
            result.png = None
        write_all(result_fd, encode_result(result))
        if not batch:
            break


def _render(language: str, code: str, cfg: RenderConfig, state: AuditState, batch: bool):
    if language == "svg":
        from .svg import render_svg

        result = render_svg(code, cfg)
        if state.violation is not None:
            result = RenderResult("forbidden", state.violation)
        return result
    if batch:
        return RenderResult("runtime_error", "a Python program sent to an SVG process")
    return run_python(code, cfg, state)


def warm_up(cfg: RenderConfig) -> None:
    """Import and exercise everything a render needs, so forked programs start hot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy  # noqa: F401
    import PIL.PngImagePlugin  # noqa: F401
    from PIL import Image

    from .svg import render_svg

    # Typical charts at the output dpi: fills matplotlib's text-metric, font and tick caches
    # that every forked program then inherits.
    for top in (1, 5, 10, 20, 50, 100, 1000):
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        ax.bar(["A", "B", "C", "D", "E"], [top * k / 5 for k in range(1, 6)], label="Series 1")
        ax.plot([0, 4], [0, top], marker="o", label="Series 2")
        ax.scatter([1, 2], [top / 2, top / 3])
        ax.set_title("Title of the chart")
        ax.set_xlabel("Category")
        ax.set_ylabel("Value (units)")
        ax.legend()
        ax.grid(True)
        _draw(fig, cfg)
        plt.close(fig)
    fig, (ax1, ax2) = plt.subplots(1, 2)
    ax1.pie([1, 2, 3], labels=["x", "y", "z"], autopct="%1.1f%%")
    ax2.hist([0.1, 0.5, 0.5, 0.9])
    _draw(fig, cfg)
    plt.close("all")
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        '<rect width="5" height="5" fill="red"/><text x="1" y="9">a</text></svg>'
    )
    render_svg(svg, cfg)
    Image.new("RGB", (2, 2)).save(io.BytesIO(), "PNG")
