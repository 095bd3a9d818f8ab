"""Evaluation and probes beside training (trainer.eval_worker: a forked process or a thread): the same numbers as
in line, in the same places, and W&B still sees its steps in order."""

import json
import os
import signal

import pandas as pd
import pytest
import torch

import bnrepro.train as train_mod
import bnrepro.worker as worker_mod
from bnrepro import ConfigError
from bnrepro.config import validate
from bnrepro.models import MLP, build_model
from bnrepro.train import core_budget, eval_worker_kind, train
from bnrepro.worker import EventWorker, WorkerError
from tests.conftest import make_cfg, small_overrides

KINDS = ["process", "thread"] if worker_mod.CAN_FORK else ["thread"]


class RecordingLogger:
    def __init__(self):
        self.calls: list[tuple[int, dict]] = []

    def log(self, metrics: dict, step: int) -> None:
        self.calls.append((step, dict(metrics)))

    def finish(self, exit_code: int = 0) -> None:
        pass


def _run(tmp_path, monkeypatch, name: str, overrides: list[str]) -> tuple[dict, RecordingLogger]:
    logger = RecordingLogger()
    monkeypatch.setattr(train_mod, "build_logger", lambda *a, **k: logger)
    info = train(make_cfg(*overrides), tmp_path / name)
    return info, logger


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("extra", [[], ["probe.moments=true"]], ids=["percentiles", "with-moment-deltas"])
def test_the_worker_gives_the_numbers_of_the_inline_run(tmp_path, monkeypatch, mnist_data, kind, extra):
    """Same weights, the same metrics file (rows in the same order) and the same W&B calls, in step order."""
    base = [*small_overrides(mnist_data, steps=230), "logger=wandb", "logger.log_every=20", "trainer.threads=1",
            "trainer.eval_every=30", *extra]
    runs = {mode: _run(tmp_path, monkeypatch, mode, [*base, f"trainer.eval_worker={mode}"]) for mode in (kind, "false")}
    assert runs[kind][0]["eval_worker"] == kind and runs["false"][0]["eval_worker"] is None
    assert runs[kind][0]["status"] == runs["false"][0]["status"] == "completed"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / kind / "metrics.parquet"),
                                  pd.read_parquet(tmp_path / "false" / "metrics.parquet"))
    beside, inline = (torch.load(tmp_path / m / "model_final.pt", weights_only=True) for m in (kind, "false"))
    assert all(torch.equal(beside[k], inline[k]) for k in inline)
    calls = runs[kind][1].calls
    assert calls == runs["false"][1].calls
    steps = [s for s, _ in calls]
    assert steps == sorted(set(steps)) and steps[-1] == 230
    assert "test/acc" in calls[-1][1] and "act/layer3/pooled/p50" in calls[-1][1]  # the last step's results
    for key in ("final_test_acc", "best_test_acc", "steps_done"):
        assert runs[kind][0][key] == runs["false"][0][key]
    if extra:
        m = pd.read_parquet(tmp_path / kind / "metrics.parquet")
        assert m["metric"].astype(str).str.endswith("/dmean").any()


@pytest.mark.parametrize("kind", KINDS)
def test_divergence_found_in_the_worker_is_recorded(tmp_path, monkeypatch, mnist_data, kind):
    """lr=1e38 overflows within a few steps: the run is 'diverged', at the in-line run's step and with its rows up
    to there. (Where the evaluation sees the overflow before the training loss does, the worker's result arrives a
    step or more later, and the run has trained on meanwhile.)"""
    base = [*small_overrides(mnist_data, steps=200), "model.norm=none", "optim.lr=1e38", "trainer.threads=1",
            "trainer.eval_every=1", "trainer.log_every=1"]
    infos = {mode: _run(tmp_path, monkeypatch, mode, [*base, f"trainer.eval_worker={mode}"])[0]
             for mode in (kind, "false")}
    assert infos[kind]["status"] == infos["false"]["status"] == "diverged"
    at = infos["false"]["diverged_at_step"]
    assert infos[kind]["diverged_at_step"] == at < 200 and infos[kind]["steps_done"] >= infos["false"]["steps_done"]
    beside, inline = (pd.read_parquet(tmp_path / m / "metrics.parquet") for m in (kind, "false"))
    pd.testing.assert_frame_equal(beside[beside.step <= at].reset_index(drop=True), inline[inline.step <= at])


def test_auto_takes_a_worker_only_for_the_mlp_on_a_cpu_with_a_core_to_spare(monkeypatch):
    cpu = torch.device("cpu")
    mlp = make_cfg("experiment=mnist_bn")
    model = build_model(mlp.model)
    assert eval_worker_kind(mlp, model, cpu, cores=2) == ("process" if worker_mod.CAN_FORK else "thread")
    assert eval_worker_kind(mlp, model, cpu, cores=1) is None  # e.g. one of make mnist-bn's side-by-side jobs
    assert eval_worker_kind(make_cfg("experiment=mnist_bn", "trainer.threads=2"), model, cpu, cores=2) is None
    assert eval_worker_kind(mlp, model, torch.device("cuda"), cores=16) is None
    assert eval_worker_kind(make_cfg("experiment=mnist_bn", "trainer.eval_every=0", "trainer.probe_every=0"),
                            model, cpu, cores=2) is None  # nothing to measure
    assert eval_worker_kind(make_cfg("experiment=mnist_bn", "trainer.eval_worker=false"), model, cpu, cores=2) is None
    vgg = make_cfg("experiment=cifar_bn_small")
    assert eval_worker_kind(vgg, build_model(vgg.model), cpu, cores=16) is None
    forced = make_cfg("experiment=cifar_bn_small", "trainer.eval_worker=thread")
    assert eval_worker_kind(forced, build_model(forced.model), cpu, cores=1) == "thread"
    monkeypatch.setattr(train_mod, "CAN_FORK", False)  # macOS, Windows
    assert eval_worker_kind(mlp, model, cpu, cores=2) == "thread"
    with pytest.raises(ConfigError, match="trainer.eval_worker=process"):
        eval_worker_kind(make_cfg("experiment=mnist_bn", "trainer.eval_worker=process"), model, cpu, cores=2)


def test_a_process_worker_needs_the_cpu():
    cfg = make_cfg("experiment=mnist_bn", "trainer.eval_worker=process")
    with pytest.raises(ConfigError, match="trainer.eval_worker=process"):
        eval_worker_kind(cfg, build_model(cfg.model), torch.device("cuda"), cores=16)


@pytest.mark.parametrize("value", ["maybe", "1", "true"])
def test_bad_eval_worker_values_name_the_key(value):
    with pytest.raises(ConfigError, match="trainer.eval_worker"):
        validate(make_cfg("experiment=mnist_bn", f"trainer.eval_worker={value}"))


@pytest.mark.parametrize("kind", ["process", "thread"])
def test_a_forced_worker_refuses_noisy_bn(kind):
    with pytest.raises(ConfigError, match=f"trainer.eval_worker={kind}"):
        validate(make_cfg("experiment=mnist_bn", "model.norm=noisy_batch", f"trainer.eval_worker={kind}"))


def test_core_budget_follows_the_launchers_thread_share(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what joblib gives each of n side-by-side jobs
    assert core_budget() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert core_budget() >= 1


def _bias_or_fail(shadow, probe, tag: int) -> tuple[int, float]:
    if tag < 0:
        raise ZeroDivisionError("as asked")
    return tag, float(shadow.head.bias[0])


@pytest.mark.parametrize("kind", KINDS)
def test_worker_measures_snapshots_in_order_and_reraises(kind):
    torch.manual_seed(0)
    model = MLP(in_features=6, hidden=(4,), norm="batch")
    worker = EventWorker(model, lambda shadow: None, _bias_or_fail, kind)
    seen = []
    try:
        for tag, value in enumerate((1.0, 2.0, 3.0)):
            with torch.no_grad():
                model.head.bias.fill_(value)
            seen += worker.submit(2 * tag) + worker.submit(2 * tag + 1)
        with torch.no_grad():
            model.head.bias.fill_(9.0)  # after the snapshots: no measurement sees it
        seen += worker.ready(wait=True)
        assert seen == [(0, 1.0), (1, 1.0), (2, 2.0), (3, 2.0), (4, 3.0), (5, 3.0)]
        worker.submit(-1)
        with pytest.raises(ZeroDivisionError if kind == "thread" else WorkerError, match="as asked"):
            worker.ready(wait=True)
        assert worker.submit(7) == [] and worker.ready(wait=True) == [(7, 9.0)]  # it goes on after an error
    finally:
        worker.close()
    if kind == "process":
        assert not worker._executor._proc.is_alive()


@pytest.mark.skipif(not worker_mod.CAN_FORK, reason="the process worker needs fork")
def test_a_dead_worker_process_is_a_clear_error():
    model = MLP(in_features=6, hidden=(4,), norm="batch")
    worker = EventWorker(model, lambda shadow: None, _bias_or_fail, "process")
    try:
        os.kill(worker._executor._proc.pid, signal.SIGKILL)
        worker._executor._proc.join(timeout=10)
        with pytest.raises(WorkerError, match="worker process ended"):
            worker.submit(0)
            worker.ready(wait=True)
    finally:
        worker.close()


def test_run_json_and_timings_say_which_path_ran(tmp_path, mnist_data):
    info = train(make_cfg(*small_overrides(mnist_data, steps=60), f"trainer.eval_worker={KINDS[0]}"), tmp_path)
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["eval_worker"] == KINDS[0] and "worker_wait_s" in on_disk["timings"]
    assert info["status"] == "completed"
