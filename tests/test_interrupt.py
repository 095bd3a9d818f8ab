"""An interrupted run (Ctrl-C, or a scheduler's SIGTERM) keeps what it measured."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from tests.conftest import ROOT


def test_sigterm_keeps_metrics_and_says_failed(tmp_path, mnist_data):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "train.py"), "experiment=mnist_bn", "trainer.max_steps=10000000",
         "trainer.progress_every=100", "logger=none", f"hydra.run.dir={tmp_path}", *mnist_data["overrides"]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until training is under way
        if "step 200/" in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "failed" and "interrupted" in info["error"]
    assert info["steps_done"] >= 200
    df = pd.read_parquet(tmp_path / "metrics.parquet")
    assert df["step"].max() >= 200
