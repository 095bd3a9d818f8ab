import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from bnrepro import ConfigError
from bnrepro.config import validate
from bnrepro.run import train
from tests.conftest import make_cfg, run_cli, small_overrides


@pytest.mark.unit
@pytest.mark.parametrize("experiment,override,key", [
    ("mnist_bn", "model.norm=foo", "model.norm"),
    ("mnist_bn", "optim.lr=-0.1", "optim.lr"),
    ("mnist_bn", "optim.lr=0", "optim.lr"),
    ("mnist_bn", "trainer.max_steps=-5", "trainer.max_steps"),
    ("mnist_bn", "trainer.eval_every=-1", "trainer.eval_every"),
    ("mnist_bn", "model.init=orthogonal", "model.init"),
    ("mnist_bn", "probe.unit=100", "probe.unit"),
    ("mnist_bn", "probe.percentiles=[15,150]", "probe.percentiles"),
    ("mnist_bn", "logger.mode=sometimes", "logger.mode"),
    ("mnist_bn", "optim.momentum=1.5", "optim.momentum"),
    ("mnist_bn", "device=tpu", "device"),
    ("mnist_bn", "data.root=''", "data.root"),
    ("mnist_bn", "trainer.amp=fp8", "trainer.amp"),
    ("mnist_bn", "data.allow_unofficial=yes", "data.allow_unofficial"),
    ("mnist_bn", "data.normalize=1", "data.normalize"),
    ("mnist_bn", "probe.moments=sometimes", "probe.moments"),
    ("mnist_bn", "probe.layers=layer2", "probe.layers"),
    ("mnist_bn", "trainer.channels_last=true", "trainer.channels_last"),
    ("mnist_bn", "trainer.fused_step=maybe", "trainer.fused_step"),
    ("mnist_bn", "trainer.fused_step=1", "trainer.fused_step"),
    ("mnist_bn", "data.sparse_eval=1", "data.sparse_eval"),
    ("mnist_bn", "trainer.divergence_threshold=1", "trainer.divergence_threshold"),
    ("mnist_bn", "trainer.stop_on_divergence=maybe", "trainer.stop_on_divergence"),
    ("mnist_bn", "model.norm_position=middle", "model.norm_position"),
    ("mnist_bn", "model.affine=maybe", "model.affine"),
    ("mnist_bn", "probe.affine=1", "probe.affine"),
    # the optimisation probes and lp norms, on the deep linear network
    ("dln", "model.norm=l3", "model.norm"),
    ("dln", "ics.layers=[1,5]", "ics.layers"),
    ("dln", "ics.layers=[26]", "ics.layers"),
    ("dln", "landscape.eta_max=0.001", "landscape.eta_max"),
    ("dln", "landscape.spacing=cubic", "landscape.spacing"),
    ("dln", "landscape.points=0", "landscape.points"),
    ("dln", "trainer.ics_every=-1", "trainer.ics_every"),
    ("dln", "data.n_train=0", "data.n_train"),
    ("dln", "data.features=2.5", "data.features"),
])
def test_invalid_values_name_the_key(experiment, override, key):
    cfg = make_cfg(f"experiment={experiment}", override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


@pytest.mark.unit
def test_default_experiment_config_is_valid():
    validate(make_cfg("experiment=mnist_bn"))
    validate(make_cfg("experiment=mnist_lr_sweep"))
    for experiment in ("cifar_bn", "cifar_bn_small", "dln", "ics", "ics_full", "landscape", "landscape_full",
                       "lp_norm", "lp_norm_full"):
        validate(make_cfg(f"experiment={experiment}"))


@pytest.mark.unit
def test_unknown_key_is_refused_by_hydra():
    with pytest.raises(ConfigCompositionException, match="not_a_key"):
        make_cfg("experiment=mnist_bn", "model.not_a_key=3")


@pytest.mark.integration
def test_batch_larger_than_dataset_fails_before_anything_is_written(tmp_path, mnist_data):
    """The dataset's sizes come from the files' headers (data.sizes), before the run folder is touched."""
    from bnrepro.data import sizes

    cfg = make_cfg(*small_overrides(mnist_data), "trainer.batch_size=100000")
    assert sizes(cfg.data) == (60000, 10000, 784)
    with pytest.raises(ConfigError, match="trainer.batch_size=100000 is larger than the training set"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.unit
def test_the_data_sizes_are_read_without_loading(tmp_path):
    """From IDX headers (plain or .gz), the linear task's config; None where the files are not there yet."""
    import gzip

    from bnrepro.data import sizes

    raw = tmp_path / "raw"
    raw.mkdir()

    def header(*dims):
        return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)

    (raw / "a").write_bytes(header(7, 2, 3) + bytes(42))
    with gzip.open(raw / "b.gz", "wb") as f:
        f.write(header(5, 2, 3) + bytes(30))
    files = {"train_images": "a", "test_images": "b", "train_labels": "c", "test_labels": "d"}
    cfg = OmegaConf.create({"format": "idx", "root": str(tmp_path), "folder": "raw", "files": files})
    assert sizes(cfg) == (7, 5, 6)
    cfg.files.test_images = "missing"
    assert sizes(cfg) is None
    linear = make_cfg("experiment=dln", "data.n_train=30").data
    assert sizes(linear) == (30, 1000, 10)


@pytest.mark.e2e
def test_cli_reports_a_bad_value_without_a_traceback(tmp_path):
    out = run_cli("experiment=mnist_bn", "model.norm=foo", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert "model.norm='foo' is not one of" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.unit
@pytest.mark.parametrize("override,key", [
    ("model.norm=group", "model.norm"),
    ("model.norm_position=after", "model.norm_position"),
    ("model.noise.position=middle", "model.noise.position"),
    ("model.noise.draw=pixel", "model.noise.draw"),
    ("model.noise.n_sigma=0.5", "model.noise.n_sigma"),
    ("model.width=0", "model.width"),
    ("model.layers=[64,M,foo]", "model.layers"),
    ("model.image_size=20", "model.image_size"),
])
def test_vgg_values_are_checked(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(make_cfg("data=cifar10", "model=vgg", override))


@pytest.mark.unit
def test_vgg_config_builds_the_paper_network_with_the_run_seed():
    from bnrepro.models import build_model

    cfg = make_cfg("data=cifar10", "model=vgg", "model.norm=noisy_batch", "model.width=0.125", "seed=5")
    validate(cfg)
    model = build_model(cfg.model)
    assert len(model.taps()) == 13
    assert model.convs()[0].norm.seed == 5 + 1  # the run's seed, offset per layer
