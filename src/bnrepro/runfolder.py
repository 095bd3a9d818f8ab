"""A run folder's guards: the lock that keeps it to one process for the run's life, and the cleanup of what a killed
write leaves behind (`<file>.<pid>.tmp`, io_utils.replace_atomic's)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bnrepro import BnreproError

LOCK = ".lock"


class FolderBusy(BnreproError):
    """Another process holds the run folder."""


def _pid(text: bytes) -> int:
    """The pid a lock file holds, or -1 when it holds none (written by a process that has not got that far)."""
    text = text.decode(errors="replace").strip()
    return int(text) if text.isdigit() else -1


def holder(folder: Path) -> int | None:
    """The pid that holds the folder's lock, or None when no live process does (a lock left by a killed process is
    released with it: the kernel drops an flock when its holder dies)."""
    path = Path(folder) / LOCK
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid(f.read())
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def busy_message(folder: Path, pid: int) -> str:
    who = f"pid {pid}" if pid > 0 else "another process"
    return (f"{folder} is in use by {who}, which runs the same job: wait for it to finish (the same command then "
            f"skips the finished run), or stop it (the same command then resumes its checkpoint)")


class FolderLock:
    """An advisory lock on <folder>/.lock, holding this process's pid, from `acquire` until `release` (or the
    process's end, however it ends)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.fd: int | None = None

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid(os.read(fd, 32))
            os.close(fd)
            raise FolderBusy(busy_message(self.folder, pid)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def remove_leftovers(folder: Path) -> list[Path]:
    """The temporary files of writes that a kill interrupted (only the lock holder calls this: no write of its own is
    under way)."""
    gone = []
    for tmp in Path(folder).glob("*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone
