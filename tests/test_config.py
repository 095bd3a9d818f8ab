"""The config layer (src/bnrepro/config/): every experiment and group option composes and checks; a bad value is
named in one line; each default is written once; runs stored today are found again; and the extensions
docs/extending.md shows (a new optimiser, a new model, a new key) work as it says."""

import dataclasses
import inspect

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf, open_dict

from bnrepro import ConfigError
from bnrepro.config import compose, register, schema
from bnrepro.config.check import check
from bnrepro.config.plan import resolve
from bnrepro.config.stored import MIGRATIONS, same_computation
from bnrepro.run import train
from tests.conftest import CONFIGS, ROOT, make_cfg, make_config, run_cli, small_overrides

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
GROUP_OPTIONS = sorted({*schema.OPTIONS, *((p.parent.name, p.stem) for d in ("data", "model")
                                            for p in (CONFIGS / d).glob("*.yaml"))})
STORED = ROOT / "tests" / "data" / "stored_runs"


# ---- every config composes and checks --------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_and_each_value_of_its_grid_checks(experiment):
    """A broken experiment file fails here, in seconds: the config itself, every value its grid sweeps (one key at a
    time), and the figure functions it names."""
    from bnrepro.figures import function

    cfg = compose(f"experiment={experiment}", return_hydra_config=True)
    config = check(cfg)
    assert (CONFIGS / "experiment" / f"{config.experiment_name}.yaml").is_file()  # figures.spec finds it by name
    for name in config.figures.draw:
        function(name)
    params = cfg.hydra.sweeper.get("params") or {}
    parser = OverridesParser.create()
    for key, values in params.items():
        override = parser.parse_override(f"{key}={values}")
        for value in override.sweep_string_iterator() if override.is_sweep_override() else [values]:
            check(make_cfg(f"experiment={experiment}", f"{key}={value}"))


@pytest.mark.unit
@pytest.mark.parametrize("group,option", GROUP_OPTIONS)
def test_every_group_option_composes_and_checks(group, option):
    """Each option becomes an object of its schema: a schema of its own, or the one its file builds on."""
    value = getattr(make_config(f"{group}={option}"), group)
    key = schema.DISCRIMINATORS.get(group)
    assert type(value) is schema.schemas(group)[getattr(value, key) if key else ""]
    if (group, option) in schema.OPTIONS:
        assert type(value) is schema.OPTIONS[group, option]


@pytest.mark.unit
def test_register_puts_every_option_in_hydras_config_store():
    """What experiments/train.py and compose() call before composing: each option under its group, at its
    schema's defaults."""
    from hydra.core.config_store import ConfigStore

    register()
    store = ConfigStore.instance()
    for (group, name), option in {**schema.OPTIONS, **schema.BASES}.items():
        assert OmegaConf.to_container(store.load(f"{group}/{name}.yaml").node) == dataclasses.asdict(option())


# ---- a bad value is named, in one line -------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("override,message", [
    ("model.hidden=[100,a]", "model.hidden[1]='a' must be an integer"),
    ("model.hidden=[]", "model.hidden=[] must have at least 1 item(s)"),
    ("model.bn_eps=small", "model.bn_eps='small' must be a number"),
    ("model.noise.n_mu=nan", "model.noise.n_mu=nan must be a finite number"),
    ("trainer.threads=1.5", "trainer.threads=1.5 must be an integer"),
    ("trainer.threads=true", "trainer.threads=True must be an integer"),
    ("data.sha256=abc", "data.sha256='abc' must be a mapping"),
    ("experiment_name=[a]", "experiment_name=['a'] must be a string"),
    ("probe.shift=3", "probe.shift=3 must be a mapping"),
    ("probe.percentiles=[15,150]", "probe.percentiles[1]=150 must be <= 100"),
    ("optim.lr=0", "optim.lr=0 must be > 0"),
    ("seed=-1", "seed=-1 must be >= 0"),
    ("seed=99999999999999999999", "seed=99999999999999999999 must be <= 9223372036854775807"),
    ("trainer.fused_step=1", "trainer.fused_step=1 is not one of 'auto', True, False"),
    ("data.normalize=1", "data.normalize=1 must be true or false"),
    ("data.name=' '", "data.name=' ' must not be empty"),
    ("trainer.amp=fp8", "trainer.amp='fp8' is not one of None or 'bf16'"),
])
def test_a_value_of_the_wrong_type_or_range_names_its_key(override, message):
    with pytest.raises(ConfigError) as e:
        make_config("experiment=mnist_bn", override)
    assert str(e.value) == message


@pytest.mark.unit
@pytest.mark.parametrize("experiment,override,key", [
    ("mnist_bn", "model.norm=foo", "model.norm"),
    ("mnist_bn", "optim.lr=-0.1", "optim.lr"),
    ("mnist_bn", "trainer.max_steps=-5", "trainer.max_steps"),
    ("mnist_bn", "trainer.eval_every=-1", "trainer.eval_every"),
    ("mnist_bn", "model.init=orthogonal", "model.init"),
    ("mnist_bn", "probe.unit=100", "probe.unit"),
    ("mnist_bn", "logger.mode=sometimes", "logger.mode"),
    ("mnist_bn", "optim.momentum=1.5", "optim.momentum"),
    ("mnist_bn", "device=tpu", "device"),
    ("mnist_bn", "data.root=''", "data.root"),
    ("mnist_bn", "data.allow_unofficial=yes", "data.allow_unofficial"),
    ("mnist_bn", "probe.moments=sometimes", "probe.moments"),
    ("mnist_bn", "probe.layers=layer2", "probe.layers"),
    ("mnist_bn", "trainer.channels_last=true", "trainer.channels_last"),
    ("mnist_bn", "trainer.fused_step=maybe", "trainer.fused_step"),
    ("mnist_bn", "data.sparse_eval=1", "data.sparse_eval"),
    ("mnist_bn", "trainer.divergence_threshold=1", "trainer.divergence_threshold"),
    ("mnist_bn", "trainer.stop_on_divergence=maybe", "trainer.stop_on_divergence"),
    ("mnist_bn", "model.norm_position=middle", "model.norm_position"),
    ("mnist_bn", "model.affine=maybe", "model.affine"),
    ("mnist_bn", "probe.affine=1", "probe.affine"),
    ("mnist_bn", "optim.nesterov=true", "optim.nesterov"),
    ("mnist_shift", "probe.shift.classes=[10,11]", "probe.shift.classes"),
    ("mnist_shift", "probe.shift.contrast=[]", "probe.shift.contrast"),
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
    # the VGG's own keys
    ("cifar_bn_small", "model.norm=group", "model.norm"),
    ("cifar_bn_small", "model.noise.position=middle", "model.noise.position"),
    ("cifar_bn_small", "model.noise.draw=pixel", "model.noise.draw"),
    ("cifar_bn_small", "model.noise.n_sigma=0.5", "model.noise.n_sigma"),
    ("cifar_bn_small", "model.width=0", "model.width"),
    ("cifar_bn_small", "model.layers=[64,M,foo]", "model.layers"),
    ("cifar_bn_small", "model.image_size=20", "model.image_size"),
])
def test_invalid_values_name_the_key(experiment, override, key):
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', r'[.]')}\W"):
        make_config(f"experiment={experiment}", override)


@pytest.mark.unit
def test_a_key_no_schema_has_and_a_key_left_unset_are_named():
    """What a group or experiment file meets that adds a key to a group (the command line's + is refused earlier, and
    a key Hydra does not know is Hydra's error), or a dataset file that leaves one of its format's keys unset."""
    with pytest.raises(ConfigCompositionException, match="not_a_key"):
        make_cfg("experiment=mnist_bn", "model.not_a_key=3")
    cfg = make_cfg("experiment=mnist_bn")
    with open_dict(cfg):
        cfg.model.activaton = "relu"
    with pytest.raises(ConfigError, match=r"^model\.activaton is not a key"):
        check(cfg)
    cfg = make_cfg()
    cfg.data.folder = "???"  # as a configs/data/*.yaml building on Idx without `folder`
    with pytest.raises(ConfigError, match=r"^data\.folder must be set"):
        check(cfg)


@pytest.mark.unit
def test_a_variant_file_changes_only_what_it_names():
    """configs/model/mlp_relu.yaml builds on MLP and sets its activation."""
    relu, mlp = (dataclasses.asdict(make_config(f"model={m}").model) for m in ("mlp_relu", "mlp"))
    assert {k for k in mlp if mlp[k] != relu[k]} == {"activation"} and relu["activation"] == "relu"


@pytest.mark.e2e
def test_cli_reports_a_bad_value_without_a_traceback(tmp_path):
    out = run_cli("experiment=mnist_bn", "model.norm=foo", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert "model.norm='foo' is not one of" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


# ---- each default written once ---------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("group", ["model", "optim"])
def test_the_constructors_take_exactly_the_schemas_keys_at_its_defaults(group):
    """model=<name> and optim=<name> hold `name` plus exactly the constructor's keyword arguments
    (models.build_model, optim.build_optimizer; optim also the schedule's keys); where a constructor has a default,
    it is the schema's."""
    from bnrepro.models import MODELS
    from bnrepro.optim import OPTIMIZERS, SCHEDULE_KEYS

    registry = {"model": MODELS, "optim": OPTIMIZERS}[group]
    for (g, name), option in schema.OPTIONS.items():
        if g != group:
            continue
        defaults = {k: v for k, v in dataclasses.asdict(option()).items() if k != "name"}
        if group == "optim":
            assert set(SCHEDULE_KEYS) <= set(defaults), name
            defaults = {k: v for k, v in defaults.items() if k not in SCHEDULE_KEYS}
        params = inspect.signature(registry[name]).parameters
        assert set(defaults) <= set(params), (name, set(defaults) - set(params))
        for key, value in defaults.items():
            default = params[key].default
            if default is inspect.Parameter.empty or default is None and isinstance(value, dict):  # noise={...}
                continue
            assert (list(default) if isinstance(default, tuple) else default) == value, (name, key)


# ---- runs stored today are found again -------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("experiment", sorted(p.stem for p in STORED.glob("*.yaml")))
def test_a_run_stored_by_earlier_code_is_found_again(experiment):
    """tests/data/stored_runs/ holds the configs that runs stored by earlier code wrote: each must compute what the
    same command computes now, or every stored run would be refused instead of skipped or resumed. A key added
    without its row in config.stored.MIGRATIONS (or a changed default) fails here."""
    stored = OmegaConf.load(STORED / f"{experiment}.yaml")
    assert same_computation(make_config(f"experiment={experiment}"), stored)
    assert not same_computation(make_config(f"experiment={experiment}", "seed=1"), stored)


@pytest.mark.unit
def test_a_new_key_needs_its_migration(monkeypatch):
    """docs/extending.md's new key: trainer.grad_clip. Without a migration a stored run computes something else; with
    one (the value stored runs computed with) it is found again, and at another value it is another run."""
    from bnrepro.config import stored as stored_module

    @schema.schema
    class Trainer(schema.Trainer):
        grad_clip: schema.Positive | None = None

    monkeypatch.setitem(schema.OPTIONS, ("trainer", "default"), Trainer)
    stored = OmegaConf.load(STORED / "mnist_bn.yaml")
    try:
        assert not same_computation(make_config("experiment=mnist_bn"), stored)
        monkeypatch.setattr(stored_module, "MIGRATIONS", (*MIGRATIONS, ("trainer.grad_clip", None, {})))
        assert same_computation(make_config("experiment=mnist_bn"), stored)
        assert not same_computation(make_config("experiment=mnist_bn", "trainer.grad_clip=1.0"), stored)
    finally:
        monkeypatch.undo()
        register()  # the ConfigStore holds the real Trainer again


# ---- extensions ------------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_adam_is_one_schema_and_one_registry_entry(tmp_path, mnist_data):
    """optim=adam: torch.optim.Adam, checked like every option, its state in the checkpoint."""
    with pytest.raises(ConfigError, match=r"^optim\.betas\[1\]=1\.5 must be < 1"):
        make_config("optim=adam", "optim.betas=[0.9,1.5]")
    assert not resolve(make_cfg("experiment=mnist_bn", "optim=adam")).fused  # the fused step needs FlatSGD
    info = train(make_cfg(*small_overrides(mnist_data, steps=60), "optim=adam", "trainer.checkpoint_every=30"),
                 tmp_path)
    assert info["status"] == "completed" and info["final_test_acc"] > 0.5


@pytest.mark.integration
def test_a_new_model_is_one_schema_one_module_and_two_registry_entries(tmp_path, mnist_data, monkeypatch):
    """docs/extending.md's new model: any module with taps() and layers() is checked, trained and probed alike."""
    import torch
    from torch import nn

    from bnrepro import models

    class Linear(nn.Module):
        def __init__(self, in_features: int = 784, width: int = 32, num_classes: int = 10):
            super().__init__()
            self.hidden, self.act, self.head = nn.Linear(in_features, width), nn.Tanh(), nn.Linear(width, num_classes)

        def forward(self, x):
            return self.head(self.act(self.hidden(x)))

        def layers(self):
            return [self.hidden, self.head]

        def taps(self):
            return {"layer1": self.act}

    @schema.schema
    class Tiny:
        name: str = "tiny"
        in_features: schema.Size = 784
        width: schema.Size = 32
        num_classes: schema.Size = 10

    monkeypatch.setitem(models.MODELS, "tiny", Linear)
    monkeypatch.setitem(schema.OPTIONS, ("model", "tiny"), Tiny)
    try:
        with pytest.raises(ConfigError, match=r"^probe\.unit=40 must be < the narrowest layer's width \(32\)"):
            make_config("model=tiny", "probe.unit=40")
        info = train(make_cfg("model=tiny", "model.width=16", "optim.lr=0.1", "trainer.max_steps=40",
                              "trainer.eval_every=20", "trainer.probe_every=10", "logger=none",
                              *mnist_data["overrides"]), tmp_path)
        assert info["status"] == "completed" and info["final_test_acc"] > 0.3
        assert torch.load(tmp_path / "model_final.pt", weights_only=True)["hidden.weight"].shape == (16, 784)
    finally:
        monkeypatch.undo()
        register()


# ---- checks that need the data, and what the model is built from -----------------------------------------------
@pytest.mark.integration
def test_batch_larger_than_dataset_fails_before_anything_is_written(tmp_path, mnist_data):
    """The dataset's sizes come from the files' headers (data.sizes), before the run folder is touched."""
    from bnrepro.data import sizes

    cfg = make_cfg(*small_overrides(mnist_data), "trainer.batch_size=100000")
    assert sizes(check(cfg).data) == ((60000, 10000, 784) if mnist_data["real"] else (1200, 400, 784))
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
    idx = schema.Idx(name="x", root=str(tmp_path), folder="raw", files=files)
    assert sizes(idx) == (7, 5, 6)
    assert sizes(dataclasses.replace(idx, files={**files, "test_images": "missing"})) is None
    assert sizes(make_config("experiment=dln", "data.n_train=30").data) == (30, 1000, 10)


@pytest.mark.unit
def test_vgg_config_builds_the_paper_network_with_the_run_seed():
    from bnrepro.models import build_model

    model = build_model(make_config("data=cifar10", "model=vgg", "model.norm=noisy_batch", "model.width=0.125",
                                    "seed=5").model)
    assert len(model.taps()) == 13
    assert model.convs()[0].norm.seed == 5 + 1  # the run's seed, offset per layer
