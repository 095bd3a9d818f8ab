"""The normalisation layers every model chooses from by name (`model.norm`), placed before each activation.

A new one is a function registered under its name (docs/extending.md): the models, `model.norm=<name>` and the
config check pick it up from NORMS.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from bnrepro.models.lp_norm import P_OF, LpNorm
from bnrepro.models.noisy_bn import NoisyBatchNorm

# name -> builder(features, conv=..., eps=..., momentum=..., noise=..., index=...) -> module
NORMS: dict[str, Callable[..., nn.Module]] = {}
# What the probes treat as "a normalisation layer": batch statistics, running statistics to freeze.
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, LpNorm)


def register(name: str):
    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        NORMS[name] = builder
        return builder

    return add


@register("none")
def identity(features: int, **_) -> nn.Module:
    return nn.Identity()


@register("batch")
def batch_norm(features: int, *, conv: bool, eps: float, momentum: float, **_) -> nn.Module:
    return (nn.BatchNorm2d if conv else nn.BatchNorm1d)(features, eps=eps, momentum=momentum)


@register("noisy_batch")
def noisy_batch_norm(features: int, *, eps: float, momentum: float, noise: dict | None, index: int, **_) -> nn.Module:
    """Each noisy-BN layer draws from its own seed, derived from noise.seed and the layer's number."""
    noise = dict(noise or {})
    return NoisyBatchNorm(features, eps=eps, momentum=momentum, **{**noise, "seed": noise.get("seed", 0) + index})


for _kind, _p in P_OF.items():  # l1, l2, linf
    register(_kind)(lambda features, *, eps, momentum, p=_p, **_: LpNorm(features, p, eps=eps, momentum=momentum))


def build_norm(kind: str, features: int, *, conv: bool = False, eps: float = 1e-5, momentum: float = 0.1,
               noise: dict | None = None, index: int = 0) -> nn.Module:
    """`index` numbers the layer (from 1)."""
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; choose one of {sorted(NORMS)}")
    return NORMS[kind](features, conv=conv, eps=eps, momentum=momentum, noise=noise, index=index)
