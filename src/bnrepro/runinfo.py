"""Provenance written next to every result: versions, git commit and dirty flag, timings, status."""

from __future__ import annotations

import errno
import json
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch

from bnrepro.io_utils import replace_atomic
from bnrepro.paths import PROJECT_ROOT

# What "dirty" means: changed code or config. results/ is what the make targets themselves rewrite, so a chain of
# targets (make cifar-bn && make lp-norm) would otherwise mark every run after the first as dirty.
CODE_ONLY = (".", ":(exclude)results")
# run.json's statuses of a run that ended: a finished run is skipped when its command runs again, and results are made
# of finished runs; `running`, `interrupted` and `failed` are the others.
FINISHED = ("completed", "diverged")


MAX_UNTRACKED_BYTES = 1 << 20  # a new config or module goes into code.diff; a stray large file is only named


def _git(*args: str, ok: tuple[int, ...] = (0,)) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode in ok else None


def git_state() -> dict:
    """The commit, and whether the code differs from it: changed files and new files that git does not ignore (a
    new experiment config is part of what ran)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=all", "--", *CODE_ONLY)
    return {
        "git_commit": commit.strip() if commit else None,
        "git_dirty": bool(status.strip()) if status is not None else None,
    }


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        # Which kernels torch picks (e.g. AVX2 or AVX512): the same code and seed round differently on another kind
        # of CPU, so bitwise comparisons hold between runs that agree on this.
        "cpu": f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()})",
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "argv": sys.argv,
        **git_state(),
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def save_code_diff(run_dir: Path) -> None:
    """With uncommitted changes, the commit alone does not say what ran: keep the diff beside the result, new
    (untracked, not ignored) files included."""
    diff = _git("diff", "HEAD", "--", *CODE_ONLY) or ""
    for name in (_git("ls-files", "--others", "--exclude-standard", "--", *CODE_ONLY) or "").splitlines():
        path = PROJECT_ROOT / name
        if path.is_file() and path.stat().st_size > MAX_UNTRACKED_BYTES:
            diff += f"# new file {name}: {path.stat().st_size} bytes, not copied here\n"
        else:  # exit code 1: the files differ, which is the point
            diff += _git("diff", "--no-index", "--", "/dev/null", name, ok=(0, 1)) or ""
    if diff:
        (Path(run_dir) / "code.diff").write_text(diff)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_json(path: Path) -> dict | None:
    """A run.json, or None when there is none (or it cannot be read: a run killed while writing one never leaves
    half a file, but a user might)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: dict) -> None:
    """Atomically; on a full disk, in place over the file it replaces (whose blocks are already allocated), so that a
    run's status can still say `failed` when nothing new fits."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    path = Path(path)
    try:
        replace_atomic(path, lambda tmp: tmp.write_text(text))
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not path.is_file():
            raise
        with open(path, "r+") as f:
            f.write(text)
            f.truncate()
