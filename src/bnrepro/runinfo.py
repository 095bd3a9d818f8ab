"""Provenance written next to every result: versions, git commit and dirty flag, timings, status."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# What "dirty" means: changed code or config. results/ is what the make targets themselves rewrite, so a chain of
# targets (make cifar-bn && make lp-norm) would otherwise mark every run after the first as dirty.
CODE_ONLY = (".", ":(exclude)results")
STATUSES = ("completed", "diverged", "failed")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state() -> dict:
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_ONLY)
    return {
        "git_commit": commit.strip() if commit else None,
        "git_dirty": bool(status.strip()) if status is not None else None,
    }


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "argv": sys.argv,
        **git_state(),
    }


def save_code_diff(run_dir: Path) -> None:
    """With uncommitted changes, the commit alone does not say what ran: keep the diff beside the result."""
    diff = _git("diff", "HEAD", "--", *CODE_ONLY)
    if diff:
        (Path(run_dir) / "code.diff").write_text(diff)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: dict) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
