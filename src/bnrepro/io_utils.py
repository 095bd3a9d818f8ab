"""What several modules need of the world outside the process: files written atomically (torch's too), and whether
a server answers (asked with a short timeout, so that nothing ever waits on a network that is not there)."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch


def replace_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """write(tmp) into a temporary file beside `path`, then move it into place: readers (and parallel jobs writing
    the same file) never see a half-written file, and a crash leaves the previous one intact."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def unwritable_reason(folder: Path) -> str | None:
    """Why files cannot be written into `folder` (created where missing), or None: the folder, or its nearest
    existing parent, must be a folder that this process may write and whose mode bits allow writing (root may write
    anywhere, but a folder made read-only is meant to stay untouched)."""
    probe = Path(folder).expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK) or not probe.stat().st_mode & 0o222:
        return f"{probe} is not writable"
    if os.statvfs(probe).f_flag & os.ST_RDONLY:
        return f"{probe} is on a read-only file system"
    return None


def writable_folder(folder: Path) -> bool:
    """Whether files may be written into `folder` (unwritable_reason says why not); where they may, it is created."""
    if unwritable_reason(folder) is not None:
        return False
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return True
    except OSError:
        return False


def save_torch(obj, path: Path, before_replace: Callable[[], object] | None = None) -> None:
    """torch.save, atomically, and with a full disk reported as the OSError it is (torch.save into a file raises a
    RuntimeError about stream positions instead): serialised in memory first, then written as bytes.
    `before_replace`: called once the new file is complete, before it takes the old one's place."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)

    def write(tmp: Path) -> None:
        tmp.write_bytes(buffer.getbuffer())
        if before_replace is not None:
            before_replace()

    replace_atomic(Path(path), write)


def reachable(url: str, timeout: float = 3.0) -> bool:
    """A TCP connection to the URL's host (port 443 unless the URL names one) within `timeout` seconds."""
    parsed = urlparse(url if "://" in url else f"https://{url}")
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except (OSError, TypeError):
        return False
