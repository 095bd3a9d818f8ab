"""Bad values end the command before anything is written: exit code 2, one line naming the key, no folder."""

import os
import stat

import pytest

from tests.conftest import make_cfg, run_cli


@pytest.mark.e2e
@pytest.mark.parametrize("override,message", [
    ("optim.lr=abc", "optim.lr='abc' must be a number"),
    ("trainer.max_steps=0", "trainer.max_steps=0 must be >= 1"),
    ("model.norm=foo", "model.norm='foo' is not one of"),
    ("probe.layers=[layer7]", "probe.layers="),
    ("probe.layers=[]", "probe.layers=[] names no layer"),
    ("optim.lr=inf", "optim.lr=inf must be a finite number"),
    ("+trainer.max_step=2000", "+trainer.max_step adds a key that no config of this project reads (did you mean "
                               "trainer.max_steps?)"),
    ("trainer.batch_size=100000", "trainer.batch_size=100000 is larger than the training set (60000)"),
])
def test_a_bad_value_exits_2_before_any_folder(tmp_path, override, message):
    run_dir = tmp_path / "run"
    out = run_cli("experiment=mnist_bn", override, f"hydra.run.dir={run_dir}")
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not run_dir.exists()


@pytest.mark.e2e
def test_an_unwritable_run_dir_exits_2_naming_it(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        out = run_cli("experiment=mnist_bn", f"hydra.run.dir={locked / 'run'}")
    finally:
        locked.chmod(stat.S_IRWXU)
    assert out.returncode == 2
    assert "hydra.run.dir=" in out.stderr and "is not writable" in out.stderr and "Traceback" not in out.stderr
    assert os.listdir(locked) == []


@pytest.mark.e2e
def test_one_bad_job_stops_a_sweep_before_any_job_runs(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("-m", "experiment=mnist_bn", "model.norm=none,foo", "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 2
    assert "job [" in out.stderr and "model.norm=foo" in out.stderr and "is not one of" in out.stderr
    assert not sweep.exists()


@pytest.mark.e2e
def test_the_grid_of_an_experiment_config_is_checked_too(tmp_path):
    """hydra.sweeper.params of mnist_lr_sweep, with a bad value given once on the command line for every job."""
    sweep = tmp_path / "sweep"
    out = run_cli("-m", "experiment=mnist_lr_sweep", "trainer.batch_size=0", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 2 and "trainer.batch_size=0 must be >= 1" in out.stderr
    assert not sweep.exists()


@pytest.mark.unit
def test_resolve_decides_what_the_loop_receives():
    from bnrepro.config.plan import resolve

    plan = resolve(make_cfg("experiment=mnist_bn", "logger=none"))
    assert plan.fused and plan.every.steps == 50000 and plan.every.progress == 2500 and plan.every.wandb == 0
    assert plan.every.probe == 50 and plan.config.probe.percentiles == [15, 50, 85]
    assert plan.etas is None and plan.every.deltas is False
    vgg = resolve(make_cfg("experiment=cifar_bn_small"))
    assert not vgg.fused and vgg.every.deltas and vgg.every.wandb == 250  # W&B offline, configs/logger/wandb.yaml
    dln = resolve(make_cfg("experiment=dln"))
    assert dln.config.ics.layers == [9, 17] and len(dln.etas) == 8 and dln.every.probe == 0
