"""Evaluation and probes in their own thread (trainer.eval_thread): the same numbers as in line, in the same places,
and W&B still sees its steps in order."""

import json

import pandas as pd
import pytest
import torch

import bnrepro.train as train_mod
from bnrepro import ConfigError
from bnrepro.config import validate
from bnrepro.models import MLP, build_model
from bnrepro.train import core_budget, train, use_eval_thread
from bnrepro.worker import EventWorker
from tests.conftest import make_cfg, small_overrides


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


@pytest.mark.parametrize("extra", [[], ["probe.moments=true"]], ids=["percentiles", "with-moment-deltas"])
def test_eval_thread_gives_the_numbers_of_the_inline_run(tmp_path, monkeypatch, mnist_data, extra):
    """Same weights, the same metrics file (rows in the same order) and the same W&B calls, in step order."""
    base = [*small_overrides(mnist_data, steps=230), "logger=wandb", "logger.log_every=20", "trainer.threads=1",
            "trainer.eval_every=30", *extra]
    runs = {mode: _run(tmp_path, monkeypatch, mode, [*base, f"trainer.eval_thread={mode}"]) for mode in ("true", "false")}
    assert runs["true"][0]["eval_thread"] is True and runs["false"][0]["eval_thread"] is False
    assert runs["true"][0]["status"] == runs["false"][0]["status"] == "completed"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "true" / "metrics.parquet"),
                                  pd.read_parquet(tmp_path / "false" / "metrics.parquet"))
    threaded, inline = (torch.load(tmp_path / m / "model_final.pt", weights_only=True) for m in ("true", "false"))
    assert all(torch.equal(threaded[k], inline[k]) for k in inline)
    calls = runs["true"][1].calls
    assert calls == runs["false"][1].calls
    steps = [s for s, _ in calls]
    assert steps == sorted(set(steps)) and steps[-1] == 230
    assert "test/acc" in calls[-1][1] and "act/layer3/pooled/p50" in calls[-1][1]  # the last step's results
    for key in ("final_test_acc", "best_test_acc", "steps_done"):
        assert runs["true"][0][key] == runs["false"][0][key]
    if extra:
        m = pd.read_parquet(tmp_path / "true" / "metrics.parquet")
        assert m["metric"].astype(str).str.endswith("/dmean").any()


def test_divergence_found_in_the_thread_is_recorded(tmp_path, monkeypatch, mnist_data):
    """lr=1e38 overflows within a few steps: the run is 'diverged', at the in-line run's step and with its rows up
    to there. (Where the evaluation sees the overflow before the training loss does, the thread's result arrives a
    step or more later, and the run has trained on meanwhile.)"""
    base = [*small_overrides(mnist_data, steps=200), "model.norm=none", "optim.lr=1e38", "trainer.threads=1",
            "trainer.eval_every=1", "trainer.log_every=1"]
    infos = {mode: _run(tmp_path, monkeypatch, mode, [*base, f"trainer.eval_thread={mode}"])[0]
             for mode in ("true", "false")}
    assert infos["true"]["status"] == infos["false"]["status"] == "diverged"
    at = infos["false"]["diverged_at_step"]
    assert infos["true"]["diverged_at_step"] == at < 200 and infos["true"]["steps_done"] >= infos["false"]["steps_done"]
    threaded, inline = (pd.read_parquet(tmp_path / m / "metrics.parquet") for m in ("true", "false"))
    pd.testing.assert_frame_equal(threaded[threaded.step <= at].reset_index(drop=True), inline[inline.step <= at])


def test_auto_takes_the_thread_only_for_the_mlp_on_a_cpu_with_a_core_to_spare():
    cpu = torch.device("cpu")
    mlp = make_cfg("experiment=mnist_bn")
    model = build_model(mlp.model)
    assert use_eval_thread(mlp, model, cpu, cores=2)
    assert not use_eval_thread(mlp, model, cpu, cores=1)  # e.g. one of make mnist-bn's side-by-side jobs
    assert not use_eval_thread(make_cfg("experiment=mnist_bn", "trainer.threads=2"), model, cpu, cores=2)
    assert not use_eval_thread(mlp, model, torch.device("cuda"), cores=16)
    assert not use_eval_thread(make_cfg("experiment=mnist_bn", "trainer.eval_every=0", "trainer.probe_every=0"),
                               model, cpu, cores=2)  # nothing to measure
    assert not use_eval_thread(make_cfg("experiment=mnist_bn", "trainer.eval_thread=false"), model, cpu, cores=2)
    vgg = make_cfg("experiment=cifar_bn_small")
    assert not use_eval_thread(vgg, build_model(vgg.model), cpu, cores=16)
    forced = make_cfg("experiment=cifar_bn_small", "trainer.eval_thread=true")
    assert use_eval_thread(forced, build_model(forced.model), cpu, cores=1)


@pytest.mark.parametrize("value", ["maybe", "1"])
def test_bad_eval_thread_values_name_the_key(value):
    with pytest.raises(ConfigError, match="trainer.eval_thread"):
        validate(make_cfg("experiment=mnist_bn", f"trainer.eval_thread={value}"))


def test_eval_thread_true_refuses_noisy_bn():
    with pytest.raises(ConfigError, match="trainer.eval_thread"):
        validate(make_cfg("experiment=mnist_bn", "model.norm=noisy_batch", "trainer.eval_thread=true"))


def test_core_budget_follows_the_launchers_thread_share(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what joblib gives each of n side-by-side jobs
    assert core_budget() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert core_budget() >= 1


def test_worker_measures_snapshots_in_order_and_reraises():
    torch.manual_seed(0)
    model = MLP(in_features=6, hidden=(4,), norm="batch")
    worker = EventWorker(model, lambda shadow: None)
    seen = []
    try:
        for value in (1.0, 2.0, 3.0):
            with torch.no_grad():
                model.head.bias.fill_(value)
            worker.submit(lambda shadow, probe: seen.append(float(shadow.head.bias[0])) or len(seen))
        with torch.no_grad():
            model.head.bias.fill_(9.0)  # after the snapshots: no measurement sees it
        worker.ready(wait=True)
        assert seen == [1.0, 2.0, 3.0]
        worker.submit(lambda shadow, probe: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            worker.ready(wait=True)
    finally:
        worker.close()


def test_run_json_and_timings_say_which_path_ran(tmp_path, mnist_data):
    info = train(make_cfg(*small_overrides(mnist_data, steps=60), "trainer.eval_thread=true"), tmp_path)
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["eval_thread"] is True and "worker_wait_s" in on_disk["timings"]
    assert info["status"] == "completed"
