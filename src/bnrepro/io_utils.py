"""What several modules need of the world outside the process: files written atomically, and whether a server
answers (asked with a short timeout, so that nothing ever waits on a network that is not there)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse


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


def reachable(url: str, timeout: float = 3.0) -> bool:
    """A TCP connection to the URL's host (port 443 unless the URL names one) within `timeout` seconds."""
    parsed = urlparse(url if "://" in url else f"https://{url}")
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except (OSError, TypeError):
        return False
