"""The normalisation layers every model chooses from by name (`model.norm`), placed before each activation."""

from __future__ import annotations

from torch import nn

from bnrepro.models.lp_norm import P_OF, LpNorm
from bnrepro.models.noisy_bn import NoisyBatchNorm

NORMS = ("none", "batch", "noisy_batch", "l1", "l2", "linf")
# What the probes treat as "a normalisation layer": batch statistics, running statistics to freeze.
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, LpNorm)


def build_norm(kind: str, features: int, *, conv: bool = False, eps: float = 1e-5, momentum: float = 0.1,
               noise: dict | None = None, index: int = 0) -> nn.Module:
    """`index` numbers the layer (from 1): each noisy-BN layer draws from its own seed, derived from noise.seed."""
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return (nn.BatchNorm2d if conv else nn.BatchNorm1d)(features, eps=eps, momentum=momentum)
    if kind == "noisy_batch":
        noise = dict(noise or {})
        return NoisyBatchNorm(features, eps=eps, momentum=momentum, **{**noise, "seed": noise.get("seed", 0) + index})
    if kind in P_OF:
        return LpNorm(features, P_OF[kind], eps=eps, momentum=momentum)
    raise ValueError(f"unknown norm {kind!r}; choose one of {NORMS}")
