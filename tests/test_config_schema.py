"""The config groups' schemas (src/bnrepro/config_schema.py): what Hydra composes from them, and the one-line errors
for a key of the wrong type, an unknown key in a group file, and a dataset file that leaves a key unset."""

import dataclasses

import pytest
from omegaconf import OmegaConf, open_dict

from bnrepro import ConfigError
from bnrepro.config import check_types, validate
from bnrepro.config_schema import MLP, OPTIONS, Train
from tests.conftest import make_cfg

pytestmark = pytest.mark.unit


def test_each_option_composes_to_its_schema_defaults():
    """model=vgg is VGG(), trainer=default is Trainer(), ...: the defaults are written once, in the dataclasses."""
    for (group, name), schema in OPTIONS.items():
        composed = OmegaConf.to_container(make_cfg(f"{group}={name}")[group])
        assert composed == dataclasses.asdict(schema()), (group, name)
    assert make_cfg("seed=4", "model=vgg").model.noise.seed == 4  # interpolations stay live
    top = make_cfg()
    assert {f.name: top[f.name] for f in dataclasses.fields(Train) if f.name != "figures"} == {
        f.name: f.default for f in dataclasses.fields(Train) if f.name != "figures"}


@pytest.mark.parametrize("override,message", [
    ("model.hidden=[100,a]", "model.hidden[1]='a' must be an integer"),
    ("model.bn_eps=small", "model.bn_eps='small' must be a number"),
    ("model.noise.n_mu=nan", "model.noise.n_mu=nan must be a finite number"),
    ("trainer.threads=1.5", "trainer.threads=1.5 must be an integer"),
    ("data.sha256=abc", "data.sha256='abc' must be a mapping"),
    ("experiment_name=[a]", "experiment_name=['a'] must be a string"),
    ("probe.shift=3", "probe.shift=3 must be a mapping"),
])
def test_a_value_of_the_wrong_type_names_its_key(override, message):
    with pytest.raises(ConfigError) as e:
        check_types(make_cfg("experiment=mnist_bn", override))
    assert str(e.value) == message


def test_a_key_no_schema_has_is_named_with_its_group():
    """What a group or experiment file that adds a key to a group meets (the command line's + is refused earlier)."""
    cfg = make_cfg("experiment=mnist_bn")
    with open_dict(cfg):
        cfg.model.activaton = "relu"
    with pytest.raises(ConfigError, match=r"model\.activaton is not a key of MLP"):
        validate(cfg)


def test_a_dataset_file_must_set_what_its_format_leaves_open():
    cfg = make_cfg()
    cfg.data.folder = "???"  # as a configs/data/*.yaml building on Idx without `folder`
    with pytest.raises(ConfigError, match=r"data\.folder must be set: Idx has no default"):
        validate(cfg)


def test_a_variant_file_changes_only_what_it_names():
    """configs/model/mlp_relu.yaml builds on MLP and sets its activation."""
    relu = OmegaConf.to_container(make_cfg("model=mlp_relu").model, resolve=True)
    mlp = OmegaConf.to_container(make_cfg("model=mlp").model, resolve=True)
    assert {k for k in mlp if mlp[k] != relu[k]} == {"activation"} and relu["activation"] == "relu"
    assert [f.name for f in dataclasses.fields(MLP)] == list(mlp)  # the keys, in the schema's order
