"""What a run does, decided once from its config: `resolve` checks the config (config.check), then fixes what the
config leaves to be decided: the device, threads, TF32, the fused step, the cadences and the landscape's step sizes.
The run, the loop and the probes receive a Plan: its checked config, as the schema's objects, and those decisions.
After `resolve` and the check against the data's sizes (config.check.check_against_data), no config value can fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from bnrepro import ConfigError
from bnrepro.config.check import check, fused_applies
from bnrepro.config.schema import Config
from bnrepro.metrics import Identity


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

    config: Config  # every key, checked
    name: str  # the run's label in progress lines and W&B
    identity: Identity  # the columns that say which run a metric row belongs to
    device: torch.device
    threads: int | None
    fused: bool  # the MLP's hand-written backward (the same numbers as autograd)
    tf32: bool  # trainer.tf32, on CUDA only
    every: Cadence
    etas: list[float] | None  # the landscape's step sizes


def resolve_device(name: str, model: str = "vgg") -> torch.device:
    """auto: a GPU where there is one, for the convolutional model only. The MLP and the deep linear network are
    small enough that a CPU core runs them about as fast, and there their numbers are the reference results'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() and model == "vgg" else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available (use device=auto or device=cpu)")
    return torch.device(name)


def variant(model, optim=None) -> str:
    """What the figures and the report group runs by: the norm, and where it differs from the papers' placement
    (after the activation) or lacks its scale and shift, or trains with a learning-rate warm-up. The papers' own
    variants keep their plain names."""
    norm = str(getattr(model, "norm", "none"))  # a model with no norm key has none
    name = norm
    if model.name == "vgg" and model.activation != "relu":  # the MLP's activation is its config's
        name += f"_{model.activation}"
    if getattr(model, "norm_position", "pre") != "pre":  # the DLN has no activation to be before
        name += f"_{model.norm_position}"
    if not getattr(model, "affine", True):
        name += "_no_affine"
    if norm == "noisy_batch" and model.noise.draw != "position":
        name += f"_{model.noise.draw}"  # noisy_batch_channel: Algorithm 1 read as one draw per sample and channel
    if getattr(optim, "warmup_steps", 0):
        name += "_warmup"  # the length is the experiment's (run.json's config holds it)
    return name


def resolve(cfg: DictConfig, name: str | None = None) -> Plan:
    """Check `cfg` (ConfigError naming the key) and decide what the run will do."""
    return decide(check(cfg), name)


def decide(c: Config, name: str | None = None) -> Plan:
    """What the run of a checked config will do."""
    from bnrepro.probes import eta_grid

    t, ls = c.trainer, c.landscape
    wandb = c.logger.name == "wandb" and c.logger.mode != "disabled"
    every = Cadence(
        steps=t.max_steps, log=t.log_every, eval=t.eval_every, probe=t.probe_every,
        deltas=c.probe.moments and t.probe_every > 1, wandb=c.logger.log_every if wandb else 0,
        progress=t.progress_every or max(1, t.max_steps // 20), ics=t.ics_every, landscape=t.landscape_every,
        checkpoint=t.checkpoint_every)
    device = resolve_device(c.device, c.model.name)
    # The VGG and the DLN have no model.init: Glorot's is theirs (models/vgg.py, dln.py). Adam has no momentum.
    identity = Identity(experiment=c.experiment_name, variant=variant(c.model, c.optim), lr=c.optim.lr, seed=c.seed,
                        batch_size=t.batch_size, momentum=getattr(c.optim, "momentum", 0.0),
                        init=getattr(c.model, "init", "glorot"), max_steps=t.max_steps)
    return Plan(
        config=c, name=name or f"{identity.variant} optim.lr={c.optim.lr:g} seed={c.seed}", identity=identity,
        device=device,
        # trainer.threads=null: one thread for the MLP on a CPU, whose small products run faster on one thread than
        # on two (docs/speed.md) and then give the numbers of `make`'s one-thread jobs; torch's choice otherwise.
        threads=t.threads or (1 if device.type == "cpu" and c.model.name == "mlp" else None),
        fused=t.fused_step is not False and not t.compile and fused_applies(c),
        tf32=t.tf32 and device.type == "cuda", every=every,
        etas=eta_grid(c.optim.lr, ls.eta_min, ls.eta_max, ls.points, ls.spacing) if t.landscape_every else None)
