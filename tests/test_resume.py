"""A run that stops, however it stops, keeps what it measured; the same command resumes it, and the resumed run
ends with the weights and metrics of an uninterrupted one, bit for bit on the CPU."""

import json
import signal
import subprocess

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import ROOT, run_cli, start_cli

SHORT = ["experiment=mnist_bn", "trainer.max_steps=400", "trainer.checkpoint_every=100", "trainer.eval_every=50",
         "trainer.probe_every=20", "trainer.progress_every=10", "logger=none"]


def start_and_stop(run_dir, overrides, at_step: int, sig) -> subprocess.CompletedProcess:
    """Start a run, send `sig` once its progress line for `at_step` appears, and wait for it to end."""
    proc = start_cli(*overrides, f"hydra.run.dir={run_dir}", stderr=subprocess.STDOUT)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if f"step {at_step}/" in line:
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=1200)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(seen) + rest, "")


def same_run(a, b) -> None:
    pd.testing.assert_frame_equal(pd.read_parquet(a / "metrics.parquet"), pd.read_parquet(b / "metrics.parquet"))
    wa, wb = (torch.load(d / "model_final.pt", weights_only=True) for d in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.e2e
def test_kill_9_then_the_same_command_resumes_bitwise(tmp_path, mnist_data):
    overrides = [*SHORT, *mnist_data["overrides"]]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_cli(*overrides, f"hydra.run.dir={whole}").returncode == 0
    start_and_stop(killed, overrides, 250, signal.SIGKILL)
    info = json.loads((killed / "run.json").read_text())
    assert info["status"] == "running"  # what a killed run leaves: never taken for a finished one
    assert (killed / "checkpoint.pt").is_file() and not (killed / "model_final.pt").exists()
    assert pd.read_parquet(killed / "metrics.parquet")["step"].max() == 200  # up to its last checkpoint
    res = run_cli(*overrides, f"hydra.run.dir={killed}")
    assert res.returncode == 0 and "resumed from step 200" in res.stdout + res.stderr
    info = json.loads((killed / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed_from_step"] == 200
    assert not (killed / "checkpoint.pt").exists()
    same_run(whole, killed)


@pytest.mark.e2e
def test_sigterm_stops_at_a_step_with_one_line_and_resumes(tmp_path, mnist_data):
    overrides = [*SHORT, *mnist_data["overrides"]]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert run_cli(*overrides, f"hydra.run.dir={whole}").returncode == 0
    res = start_and_stop(stopped, overrides, 150, signal.SIGTERM)
    assert res.returncode == 130 and "Traceback" not in res.stdout
    said = [line for line in res.stdout.splitlines() if "interrupted" in line]
    assert len(said) == 1 and "the same command resumes" in said[0] and str(stopped) in said[0]
    info = json.loads((stopped / "run.json").read_text())
    assert info["status"] == "interrupted" and info["steps_done"] >= 150
    assert "final_test_acc" not in info and "last_test_acc" in info  # nothing partial is named final
    assert not (stopped / "model_final.pt").exists() and (stopped / "checkpoint.pt").is_file()
    rows = pd.read_parquet(stopped / "metrics.parquet")
    assert rows["step"].max() >= 150
    res = run_cli(*overrides, f"hydra.run.dir={stopped}")
    assert f"resumed from step {info['steps_done']}" in res.stdout + res.stderr
    same_run(whole, stopped)


@pytest.mark.integration
def test_a_finished_run_is_skipped_unless_forced(tmp_path, mnist_data):
    from bnrepro.run import train
    from tests.conftest import make_cfg, small_overrides

    cfg = make_cfg(*small_overrides(mnist_data, steps=40))
    first = train(cfg, tmp_path)
    mtime = (tmp_path / "metrics.parquet").stat().st_mtime_ns
    assert train(cfg, tmp_path) == first and (tmp_path / "metrics.parquet").stat().st_mtime_ns == mtime
    again = train(make_cfg(*small_overrides(mnist_data, steps=40), "force=true"), tmp_path)
    assert again["started_at"] >= first["started_at"] and (tmp_path / "metrics.parquet").stat().st_mtime_ns != mtime


@pytest.mark.e2e
def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path, mnist_data):
    overrides = [*SHORT, *mnist_data["overrides"]]
    start_and_stop(tmp_path, overrides, 150, signal.SIGTERM)
    res = run_cli(*overrides, "optim.lr=0.02", f"hydra.run.dir={tmp_path}")
    assert res.returncode == 2 and "holds a checkpoint of another config" in res.stderr + res.stdout


@pytest.mark.e2e
def test_an_interrupted_sweep_skips_its_finished_jobs_and_resumes_the_rest(tmp_path, mnist_data):
    from bnrepro.collect import load_runs
    from tests.conftest import job

    overrides = ["-m", *SHORT, "model.norm=none,batch", *mnist_data["overrides"]]
    sweep = tmp_path / "sweep"
    proc = start_cli(*overrides, f"hydra.sweep.dir={sweep}", stderr=subprocess.STDOUT)
    for line in proc.stdout:  # the first job (none) finishes; stop the second (batch) halfway
        if "model.norm=batch" in line and "step 250/" in line:
            proc.send_signal(signal.SIGTERM)
            break
    proc.communicate(timeout=1200)
    assert json.loads((job(sweep, "model.norm=batch") / "run.json").read_text())["status"] == "interrupted"
    skipped: list[str] = []
    _, runs = load_runs([sweep], skipped)
    assert list(runs["variant"]) == ["none"] and len(skipped) == 1 and "(interrupted)" in skipped[0]

    res = run_cli(*overrides, f"hydra.sweep.dir={sweep}")
    said = res.stdout + res.stderr
    assert res.returncode == 0 and "already completed" in said and "resumed from step 25" in said
    whole = tmp_path / "whole"
    assert run_cli(*overrides, f"hydra.sweep.dir={whole}").returncode == 0
    for norm in ("none", "batch"):
        same_run(job(whole, f"model.norm={norm}"), job(sweep, f"model.norm={norm}"))


@pytest.mark.e2e
def test_make_targets_keep_the_reference_results_unless_told(tmp_path):
    """make -n prints the commands: where each target's results would go."""
    def out(*args, target="mnist-bn"):
        res = subprocess.run(["make", "-n", target, *args], capture_output=True, text=True, cwd=ROOT)
        return [line.split("--out ")[1] for line in res.stdout.splitlines() if "--out " in line][0]

    assert out("seeds=5") == "results/mnist_bn"  # the reference's own settings: 5 seeds for the MLP
    assert out("seeds=3") == "results/mnist_bn-seeds3"
    assert out() == "results/mnist_bn-seeds1"
    assert out("seeds=5", "ARGS=trainer.max_steps=2000").startswith("results/mnist_bn-seeds5-")
    assert out("ARGS=trainer.max_steps=2000", "replace=1") == "results/mnist_bn"
    assert out("seeds=3", target="cifar-bn") == "results/cifar_bn"  # 3 for the VGG


@pytest.mark.integration
def test_folder_names_and_the_config_comparison_leave_out_the_same_keys(tmp_path, mnist_data):
    from bnrepro.run import train
    from tests.conftest import make_cfg, small_overrides

    first = train(make_cfg(*small_overrides(mnist_data, steps=40)), tmp_path)
    # Found again through its folder with a key that changes nothing computed: skipped, not refused.
    again = train(make_cfg(*small_overrides(mnist_data, steps=40), "trainer.progress_every=5", "trainer.threads=1"),
                  tmp_path)
    assert again == first


@pytest.mark.integration
def test_a_run_made_before_a_key_existed_is_found_again(tmp_path, mnist_data):
    """A finished run whose stored config predates an added key (computed.MIGRATIONS) is skipped, not refused, when the
    key is at the value that computes what the run computed; at another value it is another config."""
    from omegaconf import OmegaConf

    from bnrepro import ConfigError
    from bnrepro.run import train
    from tests.conftest import make_cfg, small_overrides

    first = train(make_cfg(*small_overrides(mnist_data, steps=20)), tmp_path)
    stored = OmegaConf.load(tmp_path / "config_resolved.yaml")
    del stored.trainer["tf32"]  # as a run made before trainer.tf32 existed wrote it
    (tmp_path / "config_resolved.yaml").write_text(OmegaConf.to_yaml(stored))
    assert train(make_cfg(*small_overrides(mnist_data, steps=20)), tmp_path) == first
    with pytest.raises(ConfigError, match="another config"):
        train(make_cfg(*small_overrides(mnist_data, steps=20), "trainer.tf32=true"), tmp_path)


@pytest.mark.unit
def test_each_migration_adds_its_key_exactly_where_todays_configs_carry_it():
    """For every model option and an experiment of each kind, a stored config with the key removed gets it back at
    its old value, and a config of a group without the key gets nothing."""
    import copy
    import dataclasses

    from bnrepro.config.schema import OPTIONS
    from bnrepro.config.stored import MIGRATIONS, migrate, parent, same_computation, select
    from tests.conftest import CONFIGS, make_config

    models = {name for group, name in OPTIONS if group == "model"}
    models |= {m.stem for m in (CONFIGS / "model").glob("*.yaml")}
    configs = [make_config(f"model={m}") for m in sorted(models)]
    configs += [make_config(f"experiment={e}") for e in ("dln", "cifar_bn_small", "mnist_shift", "mnist_norm_position")]
    for config in configs:
        values = dataclasses.asdict(config)
        assert migrate(values) == values  # nothing to add
        for key, old, where in MIGRATIONS:
            node, leaf = parent(values, key)
            if node is None or leaf not in node or not all(select(values, k) in ok for k, ok in where.items()):
                continue  # not this config's key, or one its group always had (the MLP's activation)
            stored = copy.deepcopy(values)
            del parent(stored, key)[0][leaf]
            assert select(migrate(stored), key) == old, (config.model.name, key)
            assert same_computation(config, OmegaConf.create(stored)) == (node[leaf] == old), (config.model.name, key)


@pytest.mark.unit
def test_a_version_1_checkpoint_is_upgraded_to_the_same_values():
    """Checkpoints written before each part had its state_dict() kept their state under other keys; a run
    interrupted then still resumes."""
    import torch

    from bnrepro import checkpoint

    old = {"step": 20, "config": "c", "model": {"w": torch.ones(2)}, "momentum_buffer": torch.zeros(3),
           "rng": {"data-order": torch.zeros(5, dtype=torch.uint8)}, "torch_rng": torch.zeros(5, dtype=torch.uint8),
           "sampler": {"epoch": 2, "i": 3, "perm": torch.arange(4)}, "moments": {("layer1", "unit"): (0.5, 2.0)},
           "steps": {"losses": torch.ones(20), "correct": torch.zeros(20, dtype=torch.int64)},
           "record": {"logged": 20, "sent": 10}, "rows": [{"step": 10}]}
    new = checkpoint.upgrade(old)
    assert new["version"] == checkpoint.VERSION and checkpoint.upgrade(new) is new
    assert new["optimizer"]["momentum_buffer"] is old["momentum_buffer"]
    assert new["sampler"] == old["sampler"] and new["probe"] == {"moments": old["moments"]}
    assert new["record"] == {"record": old["record"], "steps": old["steps"], "rows": old["rows"]}
    assert all(new[k] is old[k] for k in ("step", "config", "model", "rng", "torch_rng"))


@pytest.mark.unit
def test_a_resumed_run_reports_the_speed_of_the_steps_it_ran(caplog, monkeypatch):
    """Resumed at step 9000, 1000 steps in 10 s: 100 steps/s, not the 1000 that step 10000 over 10 s would say."""
    import logging

    from bnrepro import record
    from bnrepro.logger import NullLogger
    from bnrepro.metrics import Identity, MetricStore
    from bnrepro.record import Record, StepLog

    steps = StepLog(10000, torch.device("cpu"), classification=False)
    steps.load_state_dict({"losses": torch.ones(10000), "correct": torch.zeros(10000, dtype=torch.int64)})
    store = MetricStore(Identity("e", "batch", 0.1, 0, 60, 0.0, "gaussian", 10000))
    rec = Record(store, NullLogger(), steps, 60, "run", 10000)
    rec.started, rec.started_at = 100.0, 9000  # what Loop.run sets when it resumes from the checkpoint at 9000
    monkeypatch.setattr(record.time, "perf_counter", lambda: 110.0)
    with caplog.at_level(logging.INFO, logger="bnrepro"):
        rec.progress(10000, 10)
    assert caplog.records[-1].getMessage().endswith("| 100 steps/s")
