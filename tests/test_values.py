"""No value of any key ends in a traceback: for every key of every config group, values drawn from the key's type
and the extremes are either accepted by the checks a run makes before anything is written (and the run's objects
build), or refused with a ConfigError whose one line names the key. Deterministic (derandomized, no example
database), a fixed number of examples per key."""

import copy
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from bnrepro import ConfigError
from bnrepro.config import compose
from bnrepro.config.check import check_values
from bnrepro.config.plan import decide

pytestmark = pytest.mark.unit

# The experiments whose configs between them hold every group option: the MLP (and MNIST, SGD, W&B), the VGG
# (CIFAR-10) and the deep linear network (its synthetic data).
BASES = {"mlp": ["experiment=mnist_bn", "logger=none"], "vgg": ["experiment=cifar_bn_small", "logger=none"],
         "dln": ["experiment=dln", "logger=none"]}
# Each composed once, as the plain values the checks read (OmegaConf.to_container): a copy per example is cheap.
CONFIGS = {name: OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
           for name, cfg in ((name, compose(*overrides)) for name, overrides in BASES.items())}


def keys(node: dict, prefix: str = ""):
    """Every key, dotted; a mapping of names (data.files, its checksums) is one key."""
    for k, v in node.items():
        if isinstance(v, dict) and v and all(str(name).isidentifier() for name in v):
            yield from keys(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


CASES = sorted({(name, key) for name, values in CONFIGS.items() for key in keys(values)})

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.sampled_from(["none", "batch", "sgd", "mlp", "relu", "auto", "pre", "bf16"]))
values = st.one_of(scalars, st.lists(scalars, max_size=5), st.dictionaries(st.text(max_size=4), scalars, max_size=2))


def put(values: dict, key: str, value) -> dict:
    """A copy of the config's values with `key` set, as `key=value` on the command line sets it."""
    values = copy.deepcopy(values)
    *path, leaf = key.split(".")
    node = values
    for part in path:
        node = node[part]
    node[leaf] = value
    return values


@pytest.mark.parametrize("name,key", CASES, ids=[f"{n}:{k}" for n, k in CASES])
@settings(max_examples=6, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(value=values)
@example(value=0).via("extreme")
@example(value=-1).via("extreme")
@example(value=1e-300).via("extreme")
@example(value=1e300).via("extreme")
@example(value=math.inf).via("extreme")
@example(value=math.nan).via("extreme")
@example(value=2**64).via("extreme")
@example(value=99999999999999999999).via("extreme")
@example(value=[]).via("extreme")
@example(value=[100000] * 3).via("extreme")
@example(value=[2] * 1000).via("extreme")
@example(value="ünïcødé ☃").via("extreme")
@example(value="").via("extreme")
@example(value=None).via("extreme")
def test_every_value_of_every_key_is_accepted_or_refused_in_one_line_naming_it(name, key, value):
    try:
        plan = decide(check_values(put(CONFIGS[name], key, value)))
    except ConfigError as e:
        said = str(e)
        assert "\n" not in said, said
        leaf = key.split(".")[-1]
        assert key in said or leaf in said or key.split(".")[0] in said, (key, value, said)
        return
    assert plan.config is not None
