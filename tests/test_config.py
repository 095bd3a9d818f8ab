import pytest
from hydra.errors import ConfigCompositionException

from bnrepro import ConfigError
from bnrepro.config import validate
from bnrepro.train import train
from tests.conftest import make_cfg, run_cli, small_overrides


@pytest.mark.parametrize("override,key", [
    ("model.norm=foo", "model.norm"),
    ("optim.lr=-0.1", "optim.lr"),
    ("optim.lr=0", "optim.lr"),
    ("trainer.max_steps=-5", "trainer.max_steps"),
    ("trainer.eval_every=-1", "trainer.eval_every"),
    ("model.init=orthogonal", "model.init"),
    ("probe.unit=100", "probe.unit"),
    ("probe.percentiles=[15,150]", "probe.percentiles"),
    ("logger.mode=sometimes", "logger.mode"),
    ("optim.momentum=1.5", "optim.momentum"),
    ("device=tpu", "device"),
    ("data.root=''", "data.root"),
    ("trainer.amp=fp8", "trainer.amp"),
    ("data.allow_unofficial=yes", "data.allow_unofficial"),
    ("data.normalize=1", "data.normalize"),
    ("probe.moments=sometimes", "probe.moments"),
    ("probe.layers=layer2", "probe.layers"),
    ("trainer.channels_last=true", "trainer.channels_last"),
])
def test_invalid_values_name_the_key(override, key):
    cfg = make_cfg("experiment=mnist_bn", override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


def test_default_experiment_config_is_valid():
    validate(make_cfg("experiment=mnist_bn"))
    validate(make_cfg("experiment=mnist_lr_sweep"))


def test_unknown_key_is_refused_by_hydra():
    with pytest.raises(ConfigCompositionException, match="not_a_key"):
        make_cfg("experiment=mnist_bn", "model.not_a_key=3")


def test_batch_larger_than_dataset_fails_before_training(tmp_path, mnist_data):
    cfg = make_cfg(*small_overrides(mnist_data), "trainer.batch_size=100000")
    with pytest.raises(ConfigError, match="trainer.batch_size"):
        train(cfg, tmp_path)
    assert '"status": "failed"' in (tmp_path / "run.json").read_text()


def test_cli_reports_a_bad_value_without_a_traceback(tmp_path):
    out = run_cli("experiment=mnist_bn", "model.norm=foo", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert "model.norm='foo' is not one of" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("override,key", [
    ("model.norm=layer", "model.norm"),
    ("model.noise.position=middle", "model.noise.position"),
    ("model.noise.n_sigma=0.5", "model.noise.n_sigma"),
    ("model.width=0", "model.width"),
    ("model.layers=[64,M,foo]", "model.layers"),
    ("model.image_size=20", "model.image_size"),
])
def test_vgg_values_are_checked(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(make_cfg("data=cifar10", "model=vgg", override))


def test_vgg_config_builds_the_paper_network_with_the_run_seed():
    from bnrepro.models import build_model

    cfg = make_cfg("data=cifar10", "model=vgg", "model.norm=noisy_batch", "model.width=0.125", "seed=5")
    validate(cfg)
    model = build_model(cfg.model)
    assert len(model.taps()) == 13
    assert model.convs()[0].norm.seed == 5 + 1  # the run's seed, offset per layer
