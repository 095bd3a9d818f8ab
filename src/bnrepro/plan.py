"""What a run does, decided once from its config: `resolve` checks the config (config.validate) and fixes the
device, threads, precision, fused step, cadences and probes. The run, the loop and the probes receive a Plan and never
read `cfg` themselves (the model, optimiser, data and logger are built from their own config groups); after `resolve`
and the check against the data's sizes (config.validate_against_data), no config value can fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from bnrepro import ConfigError
from bnrepro.config import fused_applies, validate


@dataclass(frozen=True)
class Cadence:
    """Every N steps, for each thing the loop does besides stepping; 0 is off."""

    steps: int  # the run's length
    log: int  # training loss/accuracy rows (means over the window)
    eval: int  # full test-set evaluation
    probe: int  # activation percentiles on the fixed probe batch
    deltas: bool  # one step after each probe, the change of its moments (Santurkar Fig 8)
    wandb: int
    progress: int
    ics: int  # internal covariate shift, inside the step
    landscape: int  # loss landscape along the gradient, inside the step
    checkpoint: int  # checkpoint.pt and metrics.parquet

    def due(self, every: int, step: int) -> bool:
        return bool(every) and step % every == 0


@dataclass(frozen=True)
class Plan:
    """What a run does, decided by `resolve` before anything is written."""

    name: str  # the run's label in progress lines and W&B
    identity: dict  # the columns that say which run a metric row belongs to
    force: bool  # train again in a folder that holds a finished run or a checkpoint, from step 0
    seed: int  # the initial weights, and the RNG streams of the data order, augmentation and probes
    device: torch.device
    threads: int | None
    fused: bool  # the MLP's hand-written backward (the same numbers as autograd)
    eval_train: int  # training samples measured in evaluation mode with each evaluation (0: none)
    shift: dict | None  # the covariate-shift evaluation after training (probe.shift), or None
    amp: str | None
    tf32: bool  # CUDA only: TF32 matrix products and convolutions
    compile: str | None  # torch.compile's mode for the training step's forward and backward; None: eager
    channels_last: bool  # conv models: NHWC memory layout
    augment: bool  # random crops and flips of training batches (data.augment)
    batch_size: int
    eval_batch_size: int
    every: Cadence
    probe: dict | None  # the activation probe's settings, or None when it is off
    ics_layers: list[int] | None  # None: the model's default layers
    etas: list[float] | None  # the landscape's step sizes
    landscape_batched: bool
    divergence_threshold: float | None  # diverged: training loss above this multiple of the first step's loss
    stop_on_divergence: bool  # a non-finite loss always stops


def resolve_device(name: str, model: str = "vgg") -> torch.device:
    """auto: a GPU where there is one, for the convolutional model only. The MLP and the deep linear network are
    small enough that a CPU core runs them about as fast, and there their numbers are the reference results'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() and model == "vgg" else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available (use device=auto or device=cpu)")
    return torch.device(name)


def variant(model: DictConfig) -> str:
    """What the figures and the report group runs by: the norm, and where it differs from the papers' placement
    (after the activation) or lacks its scale and shift. The papers' own variants keep their plain names."""
    name = str(model.norm)
    if model.name == "vgg" and model.activation != "relu":  # the MLP's activation is its config's
        name += f"_{model.activation}"
    if "norm_position" in model and model.norm_position != "pre":  # the DLN has no activation to be before
        name += f"_{model.norm_position}"
    if "affine" in model and not model.affine:
        name += "_no_affine"
    if model.norm == "noisy_batch" and model.noise.draw != "position":
        name += f"_{model.noise.draw}"  # noisy_batch_channel: Algorithm 1 read as one draw per sample and channel
    return name


def resolve(cfg: DictConfig, name: str | None = None) -> Plan:
    """Check `cfg` (ConfigError naming the key) and decide what the run will do."""
    validate(cfg)
    t, p = cfg.trainer, cfg.probe
    from bnrepro.probes import eta_grid

    wandb = cfg.logger.name == "wandb" and cfg.logger.get("mode") != "disabled"
    probe = None
    if t.probe_every:
        probe = {"batch_size": p.batch_size, "unit": p.unit, "qs": list(p.percentiles), "bn_stats": p.bn_stats,
                 "layers": list(p.layers) if p.layers else None, "moments": p.moments,
                 "affine": p.affine}
    every = Cadence(
        steps=t.max_steps, log=t.log_every, eval=t.eval_every, probe=t.probe_every,
        deltas=bool(probe and p.moments and t.probe_every > 1), wandb=cfg.logger.log_every if wandb else 0,
        progress=t.progress_every or max(1, t.max_steps // 20), ics=t.ics_every, landscape=t.landscape_every,
        checkpoint=t.checkpoint_every)
    ls = cfg.landscape
    # trainer.threads=null: one thread for the MLP on a CPU, whose small products run faster on one thread than on
    # two (docs/speed.md) and then give the numbers of `make`'s one-thread jobs; torch's choice otherwise.
    device = resolve_device(cfg.device, cfg.model.name)
    return Plan(
        name=name or f"model.norm={cfg.model.norm} optim.lr={cfg.optim.lr:g} seed={cfg.seed}",
        identity={"experiment": cfg.experiment_name, "variant": variant(cfg.model), "lr": float(cfg.optim.lr),
                  "seed": int(cfg.seed), "batch_size": int(t.batch_size), "momentum": float(cfg.optim.momentum),
                  # The VGG and the DLN have no model.init: Glorot's is theirs (models/vgg.py, dln.py).
                  "init": cfg.model.get("init", "glorot"), "max_steps": int(t.max_steps)},
        force=bool(cfg.force), seed=int(cfg.seed), device=device,
        threads=t.threads or (1 if device.type == "cpu" and cfg.model.name == "mlp" else None),
        fused=t.fused_step is not False and not t.compile and fused_applies(cfg), amp=t.amp, compile=t.compile,
        tf32=bool(t.tf32) and device.type == "cuda", channels_last=bool(t.channels_last),
        augment=bool(cfg.data.get("augment", False)), eval_train=t.eval_train,  # CIFAR-10 alone has data.augment
        shift=OmegaConf.to_container(p.shift) if p.shift else None,
        batch_size=t.batch_size, eval_batch_size=t.eval_batch_size, every=every, probe=probe,
        ics_layers=list(cfg.ics.layers) if t.ics_every and cfg.ics.layers else None,
        etas=eta_grid(cfg.optim.lr, ls.eta_min, ls.eta_max, ls.points, ls.spacing) if t.landscape_every else None,
        landscape_batched=bool(ls.batched), divergence_threshold=t.divergence_threshold,
        stop_on_divergence=t.stop_on_divergence)
