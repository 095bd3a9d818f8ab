"""An interrupted run (Ctrl-C, or a scheduler's SIGTERM) keeps what it measured."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bnrepro.worker import CAN_FORK
from tests.conftest import ROOT


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):  # exited, waiting to be reaped
            return True
        time.sleep(0.1)
    return False


def test_sigterm_keeps_metrics_and_says_failed(tmp_path, mnist_data):
    # The process worker where it exists, whatever the core count: the run must not leave it behind.
    worker = ["trainer.eval_worker=process"] if CAN_FORK else []
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "train.py"), "experiment=mnist_bn", "trainer.max_steps=10000000",
         "trainer.progress_every=100", "logger=none", f"hydra.run.dir={tmp_path}", *worker, *mnist_data["overrides"]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until training is under way
        if "step 200/" in line or time.time() > deadline:
            break
    children = _children(proc.pid)  # the evaluation worker
    assert len(children) == (1 if CAN_FORK else 0)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    for pid in children:  # gone with its parent, not left running
        assert _gone(pid), f"the worker process {pid} outlived the run"
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "failed" and "interrupted" in info["error"]
    assert info["steps_done"] >= 200
    df = pd.read_parquet(tmp_path / "metrics.parquet")
    assert df["step"].max() >= 200
