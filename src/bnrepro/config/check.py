"""Every rule about config values, in one place: `check` turns a composed config into the schema's objects
(config.schema: each key's type and range) and then checks registry names and the rules between keys, naming the
offending key; `check_against_data` checks it against the dataset's sizes (bnrepro.data.sizes, read before any run
folder exists); `fused_applies` says where the MLP's hand-written backward runs. Unknown keys on the command line
are refused earlier, by Hydra's struct mode. config.plan.resolve calls `check`, then decides what the run does.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue
from pydantic import TypeAdapter, ValidationError

from bnrepro import ConfigError
from bnrepro.config.schema import DISCRIMINATORS, GROUPS, Config, schemas
from bnrepro.models import ACTIVATIONS, DRAWS, INITS, NORMS, POSITIONS, build_model, layer_weight, supports_fused
from bnrepro.models.norms import AFFINE, NORM_POSITIONS

# pydantic's error types in the words of every other rule here ({gt}, ...: the bound, from the error's context)
WORDS = {
    "int_type": "must be an integer", "float_type": "must be a number", "bool_type": "must be true or false",
    "string_type": "must be a string", "finite_number": "must be a finite number", "list_type": "must be a list",
    "dict_type": "must be a mapping", "dataclass_type": "must be a mapping",
    "literal_error": "is not one of {expected}",
    "greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}", "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}", "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)", "string_pattern_mismatch": "must not be empty",
}


@cache
def _adapter(schema: type) -> TypeAdapter:
    return TypeAdapter(schema)


def _unset(key: str) -> ConfigError:
    """A key left `???` in a yaml file, or absent from a group whose schema has no default for it."""
    return ConfigError(f"{key} must be set: its schema has no default for it")


def typed(schema: type, values: dict, prefix: str = ""):
    """`values` as a `schema` object; ConfigError naming the first key of the wrong type or out of its range.
    Validated as JSON, where pydantic's strict mode takes a mapping for a nested dataclass."""
    try:
        return _adapter(schema).validate_json(json.dumps(values))
    except ValidationError as e:
        error = e.errors()[0]
        key = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
        if error["type"] == "unexpected_keyword_argument":
            raise ConfigError(f"{key} is not a key of this project's configs (src/bnrepro/config/schema.py)") from None
        if error["type"] == "missing_argument":
            raise _unset(key) from None
        context = {k: f"{v:g}" if isinstance(v, float) else v for k, v in error.get("ctx", {}).items()}
        words = WORDS[error["type"]].format(**context) if error["type"] in WORDS else error["msg"]
        raise ConfigError(f"{key}={error['input']!r} {words}") from None


def check(cfg: DictConfig) -> Config:
    """The composed config as the schema's objects, every rule checked; ConfigError naming the offending key."""
    try:
        values = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True,
                                        throw_on_missing=True)
    except MissingMandatoryValue as e:
        raise _unset(e.full_key) from None
    return check_values(values)


def check_values(values: dict) -> Config:
    """check() of the config's values as plain Python (what OmegaConf.to_container gives)."""
    top = typed(Config, values)  # its own keys first: the groups' interpolations copy some (${seed})
    groups = {}
    for group in GROUPS:
        by, key = schemas(group), DISCRIMINATORS.get(group)
        tag = values[group].get(key) if key else ""
        if not isinstance(tag, str) or tag not in by:
            raise ConfigError(f"{group}.{key}={tag!r} is not one of {sorted(by)}")
        groups[group] = typed(by[tag], values[group], f"{group}.")
    config = dataclasses.replace(top, **groups)
    _check_rules(config)
    return config


def _choice(key: str, value, allowed) -> None:
    """One of a registry's names (models.NORMS, ACTIVATIONS...), which can grow: a normaliser registers itself."""
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not one of {sorted(allowed)}")


def _check_rules(c: Config) -> None:
    widths, n_layers = _model(c.model)
    _activations(c, widths)
    _learning_rate(c)

    if getattr(c.optim, "nesterov", False) and (c.optim.momentum <= 0 or c.optim.dampening != 0):
        raise ConfigError("optim.nesterov=true needs optim.momentum > 0 and optim.dampening=0")

    t = c.trainer
    if c.optim.warmup_steps > t.max_steps:
        raise ConfigError(f"optim.warmup_steps={c.optim.warmup_steps} is longer than the run (trainer.max_steps="
                          f"{t.max_steps}): its learning rate would never reach optim.lr={c.optim.lr:g}")
    if t.eval_train and not t.eval_every:
        raise ConfigError(f"trainer.eval_train={t.eval_train} is measured with each evaluation, and "
                          "trainer.eval_every=0 has none")
    if t.fused_step is True and not fused_applies(c):
        raise ConfigError("trainer.fused_step=true needs model=mlp with model.norm=none or batch (before the "
                          "activation, with its scale and shift), a sigmoid, tanh or relu activation, optim=sgd, a "
                          "classification dataset and trainer.amp=null (auto uses it where it applies)")
    if t.compile and t.fused_step is True:
        raise ConfigError(f"trainer.compile={t.compile} compiles autograd's step, and trainer.fused_step=true asks "
                          "for the hand-written one: set one of them (auto leaves the fused step out when compiling)")
    if t.channels_last and c.model.name != "vgg":
        raise ConfigError("trainer.channels_last=true needs a convolutional model (model=vgg)")

    if hasattr(c.data, "root") and not c.data.root.strip():
        raise ConfigError("data.root is empty (is BNREPRO_DATA set to an empty string?)")
    if t.probe_every:
        if c.probe.unit >= min(widths):
            raise ConfigError(f"probe.unit={c.probe.unit} must be < the narrowest layer's width ({min(widths)})")
        layers = c.probe.layers
        taps = [f"layer{i}" for i in range(1, len(widths) + 1)]  # the names models' taps() give their layers
        if layers is not None and len(layers) == 0:
            raise ConfigError("probe.layers=[] names no layer: null probes every layer, trainer.probe_every=0 none")
        if layers is not None and not all(n in taps for n in layers):
            raise ConfigError(f"probe.layers={layers!r} must be null or a list of this model's layer names "
                              f"({taps[0]}..{taps[-1]})")
    if c.probe.shift is not None:
        _shift(c)
    _step_probes(c, n_layers)


# A model key's registry, for the models that have the key (the deep linear network has no activation)
REGISTRIES = {"activation": ACTIVATIONS, "init": INITS, "norm": NORMS, "norm_position": NORM_POSITIONS}


def _model(model) -> tuple[list[int], int]:
    """The model's names and the rules between its keys; then the widths of its tapped layers (the probes' layer1..)
    and how many layers model.layers() numbers, read off the model built on the meta device (no memory, no random
    numbers), so that any model with taps() and layers() is checked alike."""
    for key, registry in REGISTRIES.items():
        if hasattr(model, key):
            _choice(f"model.{key}", getattr(model, key), registry)
    if getattr(model, "norm_position", "pre") != "pre" and model.norm == "none":
        raise ConfigError(f"model.norm_position={model.norm_position} places a normalisation, and "
                          "model.norm=none has none: choose a model.norm, or leave model.norm_position=pre")
    if not getattr(model, "affine", True) and model.norm not in AFFINE:
        raise ConfigError(f"model.affine=false removes the learned scale and shift of {' or '.join(sorted(AFFINE))}; "
                          f"model.norm={model.norm} has none to remove")
    if hasattr(model, "noise"):
        _choice("model.noise.position", model.noise.position, POSITIONS)
        _choice("model.noise.draw", model.noise.draw, DRAWS)
    if model.name == "vgg":
        convs = [c for c in model.layers if c != "M"]
        if not convs or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in convs):
            raise ConfigError(f"model.layers={model.layers} must list positive conv widths and 'M' for max-pooling")
        if model.image_size % 2 ** model.layers.count("M"):
            raise ConfigError(f"model.image_size={model.image_size} cannot be halved {model.layers.count('M')} "
                              "times")
    try:
        with torch.device("meta"):
            network = build_model(model)
    except ValueError as e:  # a normaliser's own constraint on a width (norms.register's check, or its layer's)
        said = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(said if said.startswith("model.") else f"model.norm={model.norm}: {said}") from None
    except (RuntimeError, OverflowError, TypeError) as e:  # sizes torch cannot hold (or a float width overflows)
        raise ConfigError(f"model={model.name}: its sizes make a tensor torch cannot allocate "
                          f"({str(e).splitlines()[0][:120]})") from None
    _memory(model, network)
    layers = network.layers()
    return [layer_weight(layer).shape[0] for layer in layers[:len(network.taps())]], len(layers)


# What training keeps per parameter, in float32 values: the weight, its gradient, the optimiser's state (momentum or
# Adam's two moments) and the checkpoint's copy; and per activation value: the forward's output and its gradient.
PER_PARAMETER, PER_ACTIVATION = 5, 2


def available_memory() -> int | None:
    """Bytes this machine can still give (MemAvailable), or None where it cannot say."""
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None


def _memory(model, network) -> None:
    """The model's parameters alone, as training keeps them, against the memory available: a width a run cannot
    hold is refused here, before anything is written, rather than by the allocator after its folder exists."""
    params = sum(p.numel() for p in network.parameters())
    need, have = 4 * PER_PARAMETER * params, available_memory()
    if have is not None and need > have:
        raise ConfigError(f"model={model.name}: {params:,} parameters need about {need / 2**30:.3g} GiB to train, "
                          f"and {have / 2**30:.3g} GiB is available: choose smaller widths (model.hidden, "
                          f"model.width, ...)")


def _activations(c: Config, widths: list[int]) -> None:
    """One training batch's activations (every layer's output, and its gradient) against the memory available.
    The VGG's resolution halves at each max-pool; evaluation keeps no activations (no gradient)."""
    m = c.model
    if m.name == "vgg":
        side, per_sample = m.image_size, 0
        for item in m.layers:
            if item == "M":
                side //= 2
            else:
                per_sample += max(1, int(item * m.width)) * side * side
    else:
        per_sample = sum(widths)
    need, have = 4 * PER_ACTIVATION * per_sample * c.trainer.batch_size, available_memory()
    if have is not None and need > have:
        raise ConfigError(f"model={m.name} at trainer.batch_size={c.trainer.batch_size}: a batch's activations need "
                          f"about {need / 2**30:.3g} GiB, and {have / 2**30:.3g} GiB is available: choose smaller "
                          "widths or a smaller batch")


FLOAT32_TINY = float(torch.finfo(torch.float32).tiny)  # the smallest normal float32


def _learning_rate(c: Config) -> None:
    """A rate float32 holds: below its smallest normal number the step is 0 or denormal, and no weight moves."""
    if c.optim.lr < FLOAT32_TINY:
        raise ConfigError(f"optim.lr={c.optim.lr:g} is below float32's smallest normal number ({FLOAT32_TINY:.3g}): "
                          "the weights, kept in float32, would not change")


def _shift(c: Config) -> None:
    """probe.shift: the covariate-shift evaluation after training (probes/shift.py)."""
    if c.model.name not in ("mlp", "vgg"):
        raise ConfigError(f"probe.shift needs a classifier with hidden layers (model=mlp or vgg), not {c.model.name}")
    if max(c.probe.shift.classes) > c.model.num_classes:
        raise ConfigError(f"probe.shift.classes={c.probe.shift.classes} must be numbers of classes in "
                          f"1..{c.model.num_classes}")
    if c.trainer.batch_size < 2:
        raise ConfigError(f"probe.shift needs trainer.batch_size >= 2 (batch statistics), not {c.trainer.batch_size}")


def _step_probes(c: Config, n_layers: int) -> None:
    """The probes that measure the optimisation step itself (ICS, loss landscape)."""
    t = c.trainer
    for setting in ("amp", "compile"):
        if getattr(t, setting) and (t.ics_every or t.landscape_every):
            # amp: both probes take gradients through the whole network again (the landscape's vmap of grad over
            # BatchNorm), where bf16 autocast meets open upstream bugs and rounds what the probe measures.
            # compile: the probes replay the step's forward eagerly.
            raise ConfigError(f"trainer.{setting}={getattr(t, setting)} cannot be used with trainer.ics_every/"
                              f"landscape_every: the step probes measure in float32, eagerly (trainer.{setting}=null)")
    if t.ics_every and c.ics.layers is not None and not all(i <= n_layers for i in c.ics.layers):
        raise ConfigError(f"ics.layers={c.ics.layers!r} must be null (the model's default) or a list of layer numbers "
                          f"in 2..{n_layers} (layer #1 has no earlier layers to update)")
    if t.landscape_every and c.landscape.eta_max < c.landscape.eta_min:
        raise ConfigError(f"landscape.eta_max={c.landscape.eta_max} must be >= landscape.eta_min="
                          f"{c.landscape.eta_min}")


def check_against_data(c: Config, sizes: tuple[int, int, int] | None) -> None:
    """Checks that need the dataset's sizes (training samples, test samples, input features): bnrepro.data.sizes
    reads them before any run folder exists, the run checks them again on the loaded data. None: not known yet."""
    if sizes is None:
        return
    n_train, n_test, in_features = sizes
    if c.trainer.batch_size > n_train:
        raise ConfigError(f"trainer.batch_size={c.trainer.batch_size} is larger than the training set ({n_train})")
    if c.trainer.eval_train > n_train:
        raise ConfigError(f"trainer.eval_train={c.trainer.eval_train} is larger than the training set ({n_train})")
    if c.trainer.probe_every and c.probe.batch_size > n_test:
        raise ConfigError(f"probe.batch_size={c.probe.batch_size} is larger than the test set ({n_test})")
    key = "in_channels" if c.model.name == "vgg" else "in_features"
    if getattr(c.model, key) != in_features:
        raise ConfigError(f"model.{key}={getattr(c.model, key)} but the data has {in_features} "
                          f"{key.removeprefix('in_')}")


def fused_applies(c: Config) -> bool:
    """Where the MLP's hand-written backward (models/mlp_fused.py) is exact: the classification loss in float32,
    gradients accumulated into the buffers FlatSGD keeps (optim=sgd), on a network that the kernel itself accepts
    (supports_fused, asked of the model built on the meta device: no memory, no random numbers)."""
    from bnrepro.data import TASKS

    if c.model.name != "mlp" or c.optim.name != "sgd" or TASKS.get(c.data.format) != "classification" \
            or c.trainer.amp:
        return False
    with torch.device("meta"):
        return supports_fused(build_model(c.model))
