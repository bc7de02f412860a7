"""Atomic file and folder output: a reader never sees half a file, a failed
or killed run never leaves a damaged file where a good one was, and no
half-written temporary is left behind.

Where the system allows it (Linux, most local filesystems) a file is first
written to an anonymous file in the target's folder (`O_TMPFILE`): it has
no name until it is complete, so a run killed at any moment, even with
SIGKILL, leaves nothing. Elsewhere it is a hidden `.partial` file beside the
target, removed on any error or on SIGTERM (`handle_termination`).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _anonymous_file(folder: Path) -> int | None:
    """A descriptor of a nameless file in `folder`, or None where the
    system or filesystem cannot make one (or /proc cannot reopen it)."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR, 0o600)
    except OSError:
        return None


def _link(fd: int, name: Path) -> None:
    """Give the anonymous file `fd` the name `name`: linkat() following
    /proc's link to it (plain link() would link the /proc entry itself)."""
    proc = os.open("/proc/self/fd", os.O_RDONLY)
    try:
        os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


@contextmanager
def atomic_file(path: str | os.PathLike):
    """Yield a binary file to write `path`'s content to; it takes `path`'s
    place on success, and is gone after any failure. A file object, not a
    path: some writers resolve a path (realpath) and would miss an
    anonymous file, so formats are told to writers (PIL's `format=`) and
    bytes made in memory where a library writes only to names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _anonymous_file(path.parent)
    if fd is None:
        with _named_temporary(path) as handle:
            yield handle
        return
    with os.fdopen(fd, "w+b") as handle:
        handle.raw.name = str(path)  # writers that read the name (tifffile) see the target's
        yield handle
        handle.flush()
        os.fchmod(fd, 0o666 & ~_umask())  # made 0600; give the file the usual permissions
        # Named only once complete, then moved over the target in one step.
        name = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.partial"
        _link(fd, name)
        try:
            os.replace(name, path)
        except BaseException:
            name.unlink(missing_ok=True)
            raise


@contextmanager
def _named_temporary(path: Path):
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path) as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def copy_atomic(source: str | os.PathLike, path: str | os.PathLike) -> None:
    with open(source, "rb") as src, atomic_file(path) as handle:
        shutil.copyfileobj(src, handle, 1 << 20)


_FOLDER_MARK = ".partial-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale_folders(parent: Path) -> None:
    """Remove temporary folders that `atomic_folder` left in `parent` when
    its process was killed (SIGKILL cannot be caught): their name carries
    the writer's process id, and a folder whose writer is gone is litter."""
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        name = entry.name
        if not (name.startswith(".") and _FOLDER_MARK in name and entry.is_dir()):
            continue
        try:
            pid = int(name.rsplit(_FOLDER_MARK, 1)[1].split(".", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def atomic_folder(path: str | os.PathLike):
    """Yield a temporary folder beside `path`, renamed to `path` on success.

    `path` must not exist yet: a dataset folder is never merged into or
    written over.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} already exists and is not empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_folders(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{_FOLDER_MARK}{os.getpid()}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Terminated(SystemExit):
    """SIGTERM or SIGHUP turned into an exception, so that temporaries are
    removed and files closed on the way out."""


def handle_termination() -> dict:
    """Make SIGTERM and SIGHUP unwind the stack (exit status 128 + signal)
    instead of ending the process where it stands. Only from the main
    thread (signal handlers live there); elsewhere nothing changes.
    Returns the handlers replaced, {signal: handler}, to put back once
    the work is done (a signal after that has nothing to unwind)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def raise_terminated(signum, frame):
        raise Terminated(128 + signum)

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, raise_terminated)
    return previous


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that is a file or cannot
    be created or written."""
    from ..errors import AvptError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AvptError(f"{option} {path} is a file: give a folder")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise AvptError(f"{option} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise AvptError(f"{option} {path}: cannot write in {base} (permission denied)")
    return path


def check_new_file(path: str | os.PathLike, overwrite: bool = False, option: str = "--out", also=()) -> Path:
    """Refuse, before any work, an output file that is a folder, that
    cannot be written, or (without `overwrite`) that exists; `also`: files
    written beside it (a training run's .final and .stats.json), checked
    the same way."""
    from ..errors import AvptError

    path = Path(path)
    if path.is_dir():
        raise AvptError(f"{option} {path} is a folder: give a file name")
    check_writable_folder(path.parent, option)
    if not overwrite:
        for target in (path, *also):
            if Path(target).exists():
                raise AvptError(f"{target} exists: choose another {option}, or add --overwrite to replace it")
    return path
