"""Every rule about config values, in one place: `validate` checks a composed config and names the offending key;
`validate_against_data` checks it against the dataset's sizes (bnrepro.data.sizes, read before any run folder
exists); `fused_applies` says where the MLP's hand-written backward runs. Unknown keys are refused earlier, by Hydra's
struct mode. plan.resolve calls `validate`, then decides what the run does.
"""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig

from bnrepro import ConfigError
from bnrepro.models import ACTIVATIONS, DRAWS, INITS, MODELS, NORMS, POSITIONS, build_model, supports_fused
from bnrepro.models.norms import NORM_POSITIONS, WITH_AFFINE
from bnrepro.probes.shift import KINDS as SHIFT_KINDS


def _choice(cfg: DictConfig, key: str, allowed) -> None:
    value = cfg_get(cfg, key)
    # By type as well as value: in Python 1 == True, so a set lookup alone would take 1 for true.
    if not any(value == a and type(value) is type(a) for a in allowed):
        raise ConfigError(f"{key}={value!r} is not one of {sorted(allowed, key=str)}")


def _flag(cfg: DictConfig, key: str) -> None:
    value = cfg_get(cfg, key)
    if not isinstance(value, bool):  # not a set lookup: 1 == True and 0 == False in Python
        raise ConfigError(f"{key}={value!r} must be true or false")


def _number(cfg: DictConfig, key: str, *, low=None, high=None, low_open=False, integer=False) -> None:
    value = cfg_get(cfg, key)
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{key}={value!r} must be {'an integer' if integer else 'a number'}")
    if not math.isfinite(value):  # NaN, inf: no setting of this project means either
        raise ConfigError(f"{key}={value!r} must be a finite number")
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{key}={value!r} must be {'>' if low_open else '>='} {low}")
    if high is not None and value > high:
        raise ConfigError(f"{key}={value!r} must be <= {high}")


def cfg_get(cfg: DictConfig, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def validate(cfg: DictConfig) -> None:
    """Check everything that does not need the data. Raises ConfigError naming the offending key."""
    _choice(cfg, "device", {"auto", "cpu", "cuda"})
    _number(cfg, "seed", low=0, integer=True)

    _choice(cfg, "model.name", set(MODELS))
    # The tapped layers' widths, and how many layers model.layers() numbers (the taps plus any output layer).
    widths, n_layers = {"mlp": _validate_mlp, "vgg": _validate_vgg, "dln": _validate_dln}[cfg.model.name](cfg)
    _validate_norm(cfg)

    _choice(cfg, "optim.name", {"sgd"})
    _number(cfg, "optim.lr", low=0, low_open=True)
    _number(cfg, "optim.momentum", low=0, high=1)
    _number(cfg, "optim.dampening", low=0, high=1)
    _number(cfg, "optim.weight_decay", low=0)
    if cfg.optim.nesterov and (cfg.optim.momentum <= 0 or cfg.optim.dampening != 0):
        raise ConfigError("optim.nesterov=true needs optim.momentum > 0 and optim.dampening=0")

    t = cfg.trainer
    _number(cfg, "trainer.max_steps", low=1, integer=True)
    _number(cfg, "trainer.batch_size", low=1, integer=True)
    _number(cfg, "trainer.eval_batch_size", low=1, integer=True)
    for key in ("eval_every", "probe_every", "log_every", "progress_every", "checkpoint_every"):
        _number(cfg, f"trainer.{key}", low=0, integer=True)
    if t.log_every < 1:
        raise ConfigError(f"trainer.log_every={t.log_every} must be >= 1")
    if "eval_train" in t:
        _number(cfg, "trainer.eval_train", low=0, integer=True)
        if t.eval_train and not t.eval_every:
            raise ConfigError(f"trainer.eval_train={t.eval_train} is measured with each evaluation, and "
                              "trainer.eval_every=0 has none")
    if t.divergence_threshold is not None:
        _number(cfg, "trainer.divergence_threshold", low=1, low_open=True)
    _flag(cfg, "trainer.stop_on_divergence")
    _flag(cfg, "force")
    _flag(cfg, "fresh")
    _choice(cfg, "trainer.amp", {None, "bf16"})
    _choice(cfg, "trainer.fused_step", {"auto", True, False})
    if t.fused_step is True and not fused_applies(cfg):
        raise ConfigError("trainer.fused_step=true needs model=mlp with model.norm=none or batch (before the "
                          "activation, with its scale and shift), a sigmoid, tanh or relu activation, a classification "
                          "dataset and trainer.amp=null (auto uses it where it applies)")
    _flag(cfg, "trainer.tf32")
    _flag(cfg, "trainer.channels_last")
    if t.channels_last and cfg.model.name != "vgg":
        raise ConfigError("trainer.channels_last=true needs a convolutional model (model=vgg)")
    if t.threads is not None:
        _number(cfg, "trainer.threads", low=1, integer=True)

    from bnrepro.data import LOADERS

    _choice(cfg, "data.format", set(LOADERS))
    if not isinstance(cfg.data.name, str) or not cfg.data.name.strip():
        raise ConfigError(f"data.name={cfg.data.name!r} must be a non-empty name (it names the data in every record)")
    if "root" in cfg.data and not str(cfg.data.root).strip():
        raise ConfigError("data.root is empty (is BNREPRO_DATA set to an empty string?)")
    if "sparse_eval" in cfg.data:
        _choice(cfg, "data.sparse_eval", {"auto", True, False})
    for key in ("download", "normalize", "allow_unofficial", "augment"):
        if key in cfg.data:
            _flag(cfg, f"data.{key}")
    if cfg.data.format == "linear":
        for key in ("features", "n_train", "n_test"):
            _number(cfg, f"data.{key}", low=1, integer=True)
        _number(cfg, "data.seed", low=0, integer=True)
        for key in ("x_std", "a_std"):
            if key in cfg.data:
                _number(cfg, f"data.{key}", low=0, low_open=True)
        if cfg.data.get("target_loss") is not None:
            _number(cfg, "data.target_loss", low=0, low_open=True)
    if t.probe_every:
        _number(cfg, "probe.batch_size", low=2, integer=True)
        _number(cfg, "probe.unit", low=0, integer=True)
        if cfg.probe.unit >= min(widths):
            raise ConfigError(f"probe.unit={cfg.probe.unit} must be < the narrowest layer's width ({min(widths)})")
        _choice(cfg, "probe.bn_stats", {"batch", "running"})
        _flag(cfg, "probe.moments")
        if "affine" in cfg.probe:
            _flag(cfg, "probe.affine")
        layers = cfg.probe.layers
        taps = [f"layer{i}" for i in range(1, len(widths) + 1)]  # the names models' taps() give their layers
        if layers is not None and not isinstance(layers, str) and len(layers) == 0:
            raise ConfigError("probe.layers=[] names no layer: null probes every layer, trainer.probe_every=0 none")
        if layers is not None and (isinstance(layers, str) or not all(n in taps for n in layers)):
            raise ConfigError(f"probe.layers={layers!r} must be null or a list of this model's layer names "
                              f"({taps[0]}..{taps[-1]})")
        qs = list(cfg.probe.percentiles)
        if not qs or any(isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 100 for q in qs):
            raise ConfigError(f"probe.percentiles={qs} must be numbers in [0, 100]")
    _validate_shift(cfg)

    _validate_step_probes(cfg, n_layers)

    _choice(cfg, "logger.name", {"wandb", "none"})
    if cfg.logger.name == "wandb":
        _choice(cfg, "logger.mode", {"offline", "online", "disabled"})
        _number(cfg, "logger.log_every", low=1, integer=True)


def _validate_mlp(cfg: DictConfig) -> tuple[list[int], int]:
    _choice(cfg, "model.activation", set(ACTIVATIONS))
    _choice(cfg, "model.init", set(INITS))
    _number(cfg, "model.init_std", low=0, low_open=True)
    hidden = list(cfg.model.hidden)
    if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ConfigError(f"model.hidden={hidden} must be a non-empty list of positive integers")
    return hidden, len(hidden) + 1


def _validate_vgg(cfg: DictConfig) -> tuple[list[int], int]:
    if "activation" in cfg.model:
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
        _number(cfg, f"model.{key}", low=1, integer=True)
    _flag(cfg, "model.bias")
    return [cfg.model.width] * (cfg.model.depth - 1) + [cfg.model.out_features], cfg.model.depth


def _validate_norm(cfg: DictConfig) -> None:
    _choice(cfg, "model.norm", set(NORMS))
    _number(cfg, "model.bn_eps", low=0, low_open=True)
    _number(cfg, "model.bn_momentum", low=0, high=1)
    if "norm_position" in cfg.model:
        _choice(cfg, "model.norm_position", set(NORM_POSITIONS))
        if cfg.model.norm_position != "pre" and cfg.model.norm == "none":
            raise ConfigError(f"model.norm_position={cfg.model.norm_position} places a normalisation, and "
                              "model.norm=none has none: choose a model.norm, or leave model.norm_position=pre")
    if "affine" in cfg.model:
        _flag(cfg, "model.affine")
        if not cfg.model.affine and cfg.model.norm not in WITH_AFFINE:
            raise ConfigError(f"model.affine=false removes the learned scale and shift of "
                              f"{' or '.join(WITH_AFFINE)}; model.norm={cfg.model.norm} has none to remove")
    if "noise" in cfg.model:
        _choice(cfg, "model.noise.position", set(POSITIONS))
        _choice(cfg, "model.noise.draw", set(DRAWS))
        _number(cfg, "model.noise.n_mu", low=0)
        _number(cfg, "model.noise.n_sigma", low=1)
        _number(cfg, "model.noise.r_mu", low=0)
        _number(cfg, "model.noise.r_sigma", low=0)


def _validate_step_probes(cfg: DictConfig, n_layers: int) -> None:
    """The probes that measure the optimisation step itself (ICS, loss landscape)."""
    _number(cfg, "trainer.ics_every", low=0, integer=True)
    _number(cfg, "trainer.landscape_every", low=0, integer=True)
    if cfg.trainer.amp and (cfg.trainer.ics_every or cfg.trainer.landscape_every):
        # Both probes take gradients through the whole network again (the landscape's vmap of grad over BatchNorm),
        # where bf16 autocast meets open upstream bugs and rounds what the probe measures.
        raise ConfigError(f"trainer.amp={cfg.trainer.amp} cannot be used with trainer.ics_every/landscape_every: the "
                          "step probes measure in float32 (trainer.amp=null)")
    if cfg.trainer.ics_every:
        layers = cfg.ics.layers
        if layers is not None and (isinstance(layers, (str, int)) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 2 <= i <= n_layers for i in layers)):
            raise ConfigError(f"ics.layers={layers!r} must be null (the model's default) or a list of layer numbers "
                              f"in 2..{n_layers} (layer #1 has no earlier layers to update)")
    if cfg.trainer.landscape_every:
        _number(cfg, "landscape.eta_min", low=0, low_open=True)
        _number(cfg, "landscape.eta_max", low=0, low_open=True)
        if cfg.landscape.eta_max < cfg.landscape.eta_min:
            raise ConfigError(f"landscape.eta_max={cfg.landscape.eta_max} must be >= landscape.eta_min="
                              f"{cfg.landscape.eta_min}")
        _number(cfg, "landscape.points", low=1, integer=True)
        _choice(cfg, "landscape.spacing", {"linear", "log"})
        _flag(cfg, "landscape.batched")


def validate_against_data(cfg: DictConfig, sizes: tuple[int, int, int] | None) -> None:
    """Checks that need the dataset's sizes (training samples, test samples, input features): bnrepro.data.sizes
    reads them before any run folder exists, the run checks them again on the loaded data. None: not known yet."""
    if sizes is None:
        return
    n_train, n_test, in_features = sizes
    if cfg.trainer.batch_size > n_train:
        raise ConfigError(f"trainer.batch_size={cfg.trainer.batch_size} is larger than the training set ({n_train})")
    if cfg.trainer.get("eval_train", 0) > n_train:
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
        _number(cfg, f"probe.shift.{key}", low=low, integer=True)
    if cfg.trainer.batch_size < 2:
        raise ConfigError(f"probe.shift needs trainer.batch_size >= 2 (batch statistics), not {cfg.trainer.batch_size}")
