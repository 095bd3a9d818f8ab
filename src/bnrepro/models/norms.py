"""The normalisation layers every model chooses from by name (`model.norm`), placed before each activation
(`model.norm_position=pre`) or after it (`post`).

A new one is a function registered under its name (docs/extending.md): the models, `model.norm=<name>` and the
config check pick it up from NORMS.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bnrepro.models.lp_norm import P_OF, LpNorm
from bnrepro.models.noisy_bn import NoisyBatchNorm

# name -> builder(features, conv=..., eps=..., momentum=..., noise=..., index=..., affine=...) -> module
# (`affine=False`: no learned scale and shift; only the norms registered with affine=True take it)
NORMS: dict[str, Callable[..., nn.Module]] = {}
AFFINE: set[str] = set()  # the norms whose learned scale and shift (gamma, beta) model.affine=false removes
# A norm's constraint on the width it normalises: width -> what is wrong with it, or None. build_norm applies it, and
# so the config check (which builds the model on the meta device) refuses a bad width before anything is written.
CHECKS: dict[str, Callable[[int], str | None]] = {}
# What the probes treat as "a normalisation layer": batch statistics, running statistics to freeze.
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, LpNorm)


def register(name: str, *, affine: bool = False, check: Callable[[int], str | None] | None = None):
    """Registers a builder as model.norm=<name>. affine=True: it takes affine=False (model.affine=false); check:
    its constraint on a layer's width (GroupNorm: the group count divides it)."""
    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        NORMS[name] = builder
        (AFFINE.add if affine else AFFINE.discard)(name)
        if check is not None:
            CHECKS[name] = check
        else:
            CHECKS.pop(name, None)
        return builder

    return add


@register("none")
def identity(features: int, **_) -> nn.Module:
    return nn.Identity()


@register("batch", affine=True)
def batch_norm(features: int, *, conv: bool, eps: float, momentum: float, affine: bool = True, **_) -> nn.Module:
    return (nn.BatchNorm2d if conv else nn.BatchNorm1d)(features, eps=eps, momentum=momentum, affine=affine)


@register("layer", affine=True)
def layer_norm(features: int, *, conv: bool, eps: float, affine: bool = True, **_) -> nn.Module:
    """Each sample normalised over its own features (Ba et al. 2016): no batch statistics, the same in training and
    evaluation. For a conv layer over channels and positions together (GroupNorm with one group), with a scale
    and shift per channel."""
    if conv:
        return nn.GroupNorm(1, features, eps=eps, affine=affine)
    return nn.LayerNorm(features, eps=eps, elementwise_affine=affine)


class PopulationBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BN that normalises with its running (population) statistics in training too (Ghorbani, Krishnan & Xiao 2019):
    each batch's statistics only update the running ones, and no gradient flows through them. Evaluation, and a
    probe's frozen forward (no update), normalise the same way."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D-5D input (got {x.dim()}D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if self.training and self.track_running_stats:
            with torch.no_grad():
                dims = [0, *range(2, x.dim())]
                self.running_mean.lerp_(x.mean(dims), self.momentum)
                self.running_var.lerp_(x.var(dims), self.momentum)  # unbiased, as BN's running variance
                self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


@register("batch_population")
def population_batch_norm(features: int, *, eps: float, momentum: float, **_) -> nn.Module:
    return PopulationBatchNorm(features, eps=eps, momentum=momentum)


@register("noisy_batch")
def noisy_batch_norm(features: int, *, eps: float, momentum: float, noise: dict | None, index: int, **_) -> nn.Module:
    """Each noisy-BN layer draws from its own seed, derived from noise.seed and the layer's number."""
    noise = dict(noise or {})
    return NoisyBatchNorm(features, eps=eps, momentum=momentum, **{**noise, "seed": noise.get("seed", 0) + index})


for _kind, _p in P_OF.items():  # l1, l2, linf
    register(_kind)(lambda features, *, eps, momentum, p=_p, **_: LpNorm(features, p, eps=eps, momentum=momentum))


def build_norm(kind: str, features: int, *, conv: bool = False, eps: float = 1e-5, momentum: float = 0.1,
               noise: dict | None = None, index: int = 0, affine: bool = True) -> nn.Module:
    """`index` numbers the layer (from 1)."""
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; choose one of {sorted(NORMS)}")
    if not affine and kind not in AFFINE:
        raise ValueError(f"affine=False applies to {', '.join(sorted(AFFINE))}, not {kind!r}")
    problem = CHECKS[kind](features) if kind in CHECKS else None
    if problem:
        raise ValueError(f"model.norm={kind} cannot normalise a layer of {features} features: {problem}")
    extra = {} if affine else {"affine": False}  # registered builders written before `affine` keep working
    return NORMS[kind](features, conv=conv, eps=eps, momentum=momentum, noise=noise, index=index, **extra)


def ordered(position: str, norm: nn.Module, act: nn.Module) -> dict[str, nn.Module]:
    """A block's norm and activation in the order `model.norm_position` names: pre (norm, then activation; the
    papers') or post (activation, then norm). The names stay, so the probes find `act` either way."""
    if position not in NORM_POSITIONS:
        raise ValueError(f"unknown norm_position {position!r}; choose one of {NORM_POSITIONS}")
    return {"norm": norm, "act": act} if position == "pre" else {"act": act, "norm": norm}


NORM_POSITIONS = ("pre", "post")
