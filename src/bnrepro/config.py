"""Every rule about config values, in one place: `validate` checks a composed config and names the offending key
(each key's presence and type against config_schema first, then ranges, registry names and the rules between keys);
`validate_against_data` checks it against the dataset's sizes (bnrepro.data.sizes, read before any run folder
exists); `fused_applies` says where the MLP's hand-written backward runs. Unknown keys on the command line are refused
earlier, by Hydra's struct mode. plan.resolve calls `validate`, then decides what the run does.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from bnrepro import ConfigError
from bnrepro.config_schema import DISCRIMINATORS, GROUPS, Train, schemas
from bnrepro.models import ACTIVATIONS, DRAWS, INITS, NORMS, POSITIONS, build_model, supports_fused
from bnrepro.models.norms import NORM_POSITIONS, WITH_AFFINE
from bnrepro.probes.shift import KINDS as SHIFT_KINDS


def _choice(cfg: DictConfig, key: str, allowed) -> None:
    """One of a registry's names (models.NORMS, ACTIVATIONS...): a string, as the schema has checked."""
    value = cfg_get(cfg, key)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not one of {sorted(allowed)}")


def _number(cfg: DictConfig, key: str, *, low=None, high=None, low_open=False) -> None:
    """A number's range (its type is the schema's: check_types)."""
    value = cfg_get(cfg, key)
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{key}={value!r} must be {'>' if low_open else '>='} {low}")
    if high is not None and value > high:
        raise ConfigError(f"{key}={value!r} must be <= {high}")


def check_types(cfg: DictConfig) -> None:
    """Every key of every group present and of its field's type; ConfigError naming the first that is not."""
    _check_node(cfg, Train, "", skip={*GROUPS, "hydra"})
    for group in GROUPS:
        by, key = schemas(group), DISCRIMINATORS.get(group)
        value = cfg[group][key] if key else ""
        if not isinstance(value, str) or value not in by:
            raise ConfigError(f"{group}.{key}={value!r} is not one of {sorted(by)}")
        _check_node(cfg[group], by[value], f"{group}.")


def _check_node(node: DictConfig, schema: type, prefix: str, skip: set[str] = frozenset()) -> None:
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key in node:
        if key not in fields and key not in skip:
            raise ConfigError(f"{prefix}{key} is not a key of {schema.__name__} (src/bnrepro/config_schema.py)")
    for name in fields:
        if name not in node.keys():  # `in node` is false for a value left unset (???) as well
            raise ConfigError(f"{prefix}{name} is missing (src/bnrepro/config_schema.py, {schema.__name__})")
        if OmegaConf.is_missing(node, name):
            raise ConfigError(f"{prefix}{name} must be set: {schema.__name__} has no default for it")
        value = node[name]
        if dataclasses.is_dataclass(hints[name]):
            if not isinstance(value, DictConfig):
                raise ConfigError(f"{prefix}{name}={value!r} must be a mapping of {hints[name].__name__}'s keys")
            _check_node(value, hints[name], f"{prefix}{name}.")
        else:
            _check_value(f"{prefix}{name}", value, hints[name])


def _check_value(key: str, value, hint) -> None:
    """One value against its annotation: ConfigError in the words config.validate uses for every key."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:  # Optional[X]
        if value is None:
            return
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        # By type as well as value: in Python 1 == True, so a set lookup alone would take 1 for true.
        if not any(value == a and type(value) is type(a) for a in args):
            raise ConfigError(f"{key}={value!r} is not one of {sorted(args, key=str)}")
    elif hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false")
    elif hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int if hint is int else (int, float)):
            raise ConfigError(f"{key}={value!r} must be {'an integer' if hint is int else 'a number'}")
        if not math.isfinite(value):  # NaN, inf: no setting of this project means either
            raise ConfigError(f"{key}={value!r} must be a finite number")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string")
    elif origin is list:
        if not isinstance(value, ListConfig):
            raise ConfigError(f"{key}={value!r} must be a list")
        for i, item in enumerate(value):
            _check_value(f"{key}[{i}]", item, args[0])
    elif origin is dict:
        if not isinstance(value, DictConfig):
            raise ConfigError(f"{key}={value!r} must be a mapping")
        for k in value:
            _check_value(f"{key}.{k}", value[k], args[1])
    elif hint is not Any:
        raise TypeError(f"config_schema: no check for {hint!r} ({key})")


def cfg_get(cfg: DictConfig, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def validate(cfg: DictConfig) -> None:
    """Check everything that does not need the data. Raises ConfigError naming the offending key."""
    check_types(cfg)  # every key present, of its type; choices with fixed values
    _number(cfg, "seed", low=0)

    # The tapped layers' widths, and how many layers model.layers() numbers (the taps plus any output layer).
    widths, n_layers = {"mlp": _validate_mlp, "vgg": _validate_vgg, "dln": _validate_dln}[cfg.model.name](cfg)
    _validate_norm(cfg)

    _number(cfg, "optim.lr", low=0, low_open=True)
    _number(cfg, "optim.momentum", low=0, high=1)
    _number(cfg, "optim.dampening", low=0, high=1)
    _number(cfg, "optim.weight_decay", low=0)
    if cfg.optim.nesterov and (cfg.optim.momentum <= 0 or cfg.optim.dampening != 0):
        raise ConfigError("optim.nesterov=true needs optim.momentum > 0 and optim.dampening=0")

    t = cfg.trainer
    _number(cfg, "trainer.max_steps", low=1)
    _number(cfg, "trainer.batch_size", low=1)
    _number(cfg, "trainer.eval_batch_size", low=1)
    for key in ("eval_every", "probe_every", "log_every", "progress_every", "checkpoint_every"):
        _number(cfg, f"trainer.{key}", low=0)
    if t.log_every < 1:
        raise ConfigError(f"trainer.log_every={t.log_every} must be >= 1")
    _number(cfg, "trainer.eval_train", low=0)
    if t.eval_train and not t.eval_every:
        raise ConfigError(f"trainer.eval_train={t.eval_train} is measured with each evaluation, and "
                          "trainer.eval_every=0 has none")
    if t.divergence_threshold is not None:
        _number(cfg, "trainer.divergence_threshold", low=1, low_open=True)
    if t.fused_step is True and not fused_applies(cfg):
        raise ConfigError("trainer.fused_step=true needs model=mlp with model.norm=none or batch (before the "
                          "activation, with its scale and shift), a sigmoid, tanh or relu activation, a classification "
                          "dataset and trainer.amp=null (auto uses it where it applies)")
    if t.compile and t.fused_step is True:
        raise ConfigError(f"trainer.compile={t.compile} compiles autograd's step, and trainer.fused_step=true asks "
                          "for the hand-written one: set one of them (auto leaves the fused step out when compiling)")
    if t.channels_last and cfg.model.name != "vgg":
        raise ConfigError("trainer.channels_last=true needs a convolutional model (model=vgg)")
    if t.threads is not None:
        _number(cfg, "trainer.threads", low=1)

    if not cfg.data.name.strip():
        raise ConfigError(f"data.name={cfg.data.name!r} must be a non-empty name (it names the data in every record)")
    if "root" in cfg.data and not str(cfg.data.root).strip():
        raise ConfigError("data.root is empty (is BNREPRO_DATA set to an empty string?)")
    if cfg.data.format == "linear":
        for key in ("features", "n_train", "n_test"):
            _number(cfg, f"data.{key}", low=1)
        _number(cfg, "data.seed", low=0)
        for key in ("x_std", "a_std"):
            _number(cfg, f"data.{key}", low=0, low_open=True)
        if cfg.data.target_loss is not None:
            _number(cfg, "data.target_loss", low=0, low_open=True)
    if t.probe_every:
        _number(cfg, "probe.batch_size", low=2)
        _number(cfg, "probe.unit", low=0)
        if cfg.probe.unit >= min(widths):
            raise ConfigError(f"probe.unit={cfg.probe.unit} must be < the narrowest layer's width ({min(widths)})")
        layers = cfg.probe.layers
        taps = [f"layer{i}" for i in range(1, len(widths) + 1)]  # the names models' taps() give their layers
        if layers is not None and len(layers) == 0:
            raise ConfigError("probe.layers=[] names no layer: null probes every layer, trainer.probe_every=0 none")
        if layers is not None and not all(n in taps for n in layers):
            raise ConfigError(f"probe.layers={layers!r} must be null or a list of this model's layer names "
                              f"({taps[0]}..{taps[-1]})")
        qs = list(cfg.probe.percentiles)
        if not qs or any(not 0 <= q <= 100 for q in qs):
            raise ConfigError(f"probe.percentiles={qs} must be numbers in [0, 100]")
    _validate_shift(cfg)

    _validate_step_probes(cfg, n_layers)

    if cfg.logger.name == "wandb":
        _number(cfg, "logger.log_every", low=1)


def _validate_mlp(cfg: DictConfig) -> tuple[list[int], int]:
    _choice(cfg, "model.activation", set(ACTIVATIONS))
    _choice(cfg, "model.init", set(INITS))
    _number(cfg, "model.init_std", low=0, low_open=True)
    hidden = list(cfg.model.hidden)
    if not hidden or any(h < 1 for h in hidden):  # integers: check_types
        raise ConfigError(f"model.hidden={hidden} must be a non-empty list of positive integers")
    return hidden, len(hidden) + 1


def _validate_vgg(cfg: DictConfig) -> tuple[list[int], int]:
    _choice(cfg, "model.activation", set(ACTIVATIONS))
    _number(cfg, "model.width", low=0, low_open=True)
    layers = list(cfg.model.layers)
    convs = [c for c in layers if c != "M"]
    if not convs or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in convs):
        raise ConfigError(f"model.layers={layers} must list positive conv widths and 'M' for max-pooling")
    if cfg.model.image_size % 2 ** layers.count("M"):
        raise ConfigError(f"model.image_size={cfg.model.image_size} cannot be halved {layers.count('M')} times")
    return [max(1, round(c * cfg.model.width)) for c in convs], len(convs) + 1


def _validate_dln(cfg: DictConfig) -> tuple[list[int], int]:
    for key in ("depth", "width", "in_features", "out_features"):
        _number(cfg, f"model.{key}", low=1)
    return [cfg.model.width] * (cfg.model.depth - 1) + [cfg.model.out_features], cfg.model.depth


def _validate_norm(cfg: DictConfig) -> None:
    _choice(cfg, "model.norm", set(NORMS))
    _number(cfg, "model.bn_eps", low=0, low_open=True)
    _number(cfg, "model.bn_momentum", low=0, high=1)
    if "norm_position" in cfg.model:  # the deep linear network has none (and no activation)
        _choice(cfg, "model.norm_position", set(NORM_POSITIONS))
        if cfg.model.norm_position != "pre" and cfg.model.norm == "none":
            raise ConfigError(f"model.norm_position={cfg.model.norm_position} places a normalisation, and "
                              "model.norm=none has none: choose a model.norm, or leave model.norm_position=pre")
    if "affine" in cfg.model:
        if not cfg.model.affine and cfg.model.norm not in WITH_AFFINE:
            raise ConfigError(f"model.affine=false removes the learned scale and shift of "
                              f"{' or '.join(WITH_AFFINE)}; model.norm={cfg.model.norm} has none to remove")
    _choice(cfg, "model.noise.position", set(POSITIONS))
    _choice(cfg, "model.noise.draw", set(DRAWS))
    _number(cfg, "model.noise.n_mu", low=0)
    _number(cfg, "model.noise.n_sigma", low=1)
    _number(cfg, "model.noise.r_mu", low=0)
    _number(cfg, "model.noise.r_sigma", low=0)


def _validate_step_probes(cfg: DictConfig, n_layers: int) -> None:
    """The probes that measure the optimisation step itself (ICS, loss landscape)."""
    _number(cfg, "trainer.ics_every", low=0)
    _number(cfg, "trainer.landscape_every", low=0)
    t = cfg.trainer
    if t.amp and (t.ics_every or t.landscape_every):
        # Both probes take gradients through the whole network again (the landscape's vmap of grad over BatchNorm),
        # where bf16 autocast meets open upstream bugs and rounds what the probe measures.
        raise ConfigError(f"trainer.amp={t.amp} cannot be used with trainer.ics_every/landscape_every: the "
                          "step probes measure in float32 (trainer.amp=null)")
    if t.compile and (t.ics_every or t.landscape_every):
        raise ConfigError(f"trainer.compile={t.compile} cannot be used with trainer.ics_every/landscape_every: the "
                          "step probes replay the step's forward eagerly (trainer.compile=null)")
    if cfg.trainer.ics_every:
        layers = cfg.ics.layers
        if layers is not None and not all(2 <= i <= n_layers for i in layers):
            raise ConfigError(f"ics.layers={layers!r} must be null (the model's default) or a list of layer numbers "
                              f"in 2..{n_layers} (layer #1 has no earlier layers to update)")
    if cfg.trainer.landscape_every:
        _number(cfg, "landscape.eta_min", low=0, low_open=True)
        _number(cfg, "landscape.eta_max", low=0, low_open=True)
        if cfg.landscape.eta_max < cfg.landscape.eta_min:
            raise ConfigError(f"landscape.eta_max={cfg.landscape.eta_max} must be >= landscape.eta_min="
                              f"{cfg.landscape.eta_min}")
        _number(cfg, "landscape.points", low=1)


def validate_against_data(cfg: DictConfig, sizes: tuple[int, int, int] | None) -> None:
    """Checks that need the dataset's sizes (training samples, test samples, input features): bnrepro.data.sizes
    reads them before any run folder exists, the run checks them again on the loaded data. None: not known yet."""
    if sizes is None:
        return
    n_train, n_test, in_features = sizes
    if cfg.trainer.batch_size > n_train:
        raise ConfigError(f"trainer.batch_size={cfg.trainer.batch_size} is larger than the training set ({n_train})")
    if cfg.trainer.eval_train > n_train:
        raise ConfigError(f"trainer.eval_train={cfg.trainer.eval_train} is larger than the training set ({n_train})")
    if cfg.trainer.probe_every and cfg.probe.batch_size > n_test:
        raise ConfigError(f"probe.batch_size={cfg.probe.batch_size} is larger than the test set ({n_test})")
    key = "in_channels" if cfg.model.name == "vgg" else "in_features"
    if cfg.model[key] != in_features:
        raise ConfigError(f"model.{key}={cfg.model[key]} but the data has {in_features} {key.removeprefix('in_')}")


def fused_applies(cfg: DictConfig) -> bool:
    """Where the MLP's hand-written backward (models/mlp_fused.py) is exact: the classification loss in float32, on
    a network that the kernel itself accepts (supports_fused, asked of the model built on the meta device: no memory,
    no random numbers)."""
    from bnrepro.data import TASKS

    if cfg.model.name != "mlp" or TASKS.get(cfg.data.format) != "classification" or cfg.trainer.amp:
        return False
    with torch.device("meta"):
        return supports_fused(build_model(cfg.model))


SHIFT_SETTINGS = {*SHIFT_KINDS, "reestimate_samples", "single_images", "batches_per_image"}


def _validate_shift(cfg: DictConfig) -> None:
    """probe.shift: the covariate-shift evaluation after training (probes/shift.py)."""
    spec = cfg.probe.get("shift")
    if spec is None:
        return
    if not hasattr(spec, "keys") or set(spec) != SHIFT_SETTINGS:
        raise ConfigError(f"probe.shift must be null or have exactly the keys {sorted(SHIFT_SETTINGS)}")
    if cfg.model.name not in ("mlp", "vgg"):
        raise ConfigError(f"probe.shift needs a classifier with hidden layers (model=mlp or vgg), not {cfg.model.name}")
    n = cfg.model.num_classes
    levels = {"contrast": (lambda v: v > 0, "positive factors"), "brightness": (lambda v: True, "offsets"),
              "classes": (lambda v: isinstance(v, int) and 1 <= v <= n, f"numbers of classes in 1..{n}")}
    for kind, (ok, what) in levels.items():
        values = spec[kind]
        if isinstance(values, (str, int, float)) or not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and ok(v) for v in values):
            raise ConfigError(f"probe.shift.{kind}={values!r} must be a non-empty list of {what}")
    for key, low in (("reestimate_samples", 2), ("single_images", 1), ("batches_per_image", 2)):
        _number(cfg, f"probe.shift.{key}", low=low)
    if cfg.trainer.batch_size < 2:
        raise ConfigError(f"probe.shift needs trainer.batch_size >= 2 (batch statistics), not {cfg.trainer.batch_size}")
