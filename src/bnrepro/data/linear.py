"""The deep linear network's regression task (Santurkar et al. 2018, Appendix A): targets y = A x, with x and A
Gaussian. Both come from `data.seed` (the run's seed by default, config.schema.Linear): runs at one seed see the
same problem, and each seed draws its own.

The paper states neither scale. x ~ N(0, x_std^2 I); A's entries ~ N(0, a_std^2), or, with `target_loss`, scaled so
that the targets' expected summed squared norm over the training set, E sum_i ||A x_i||^2 = n d^2 x_std^2 a_std^2,
equals target_loss. That is the zero predictor's loss, and so about the initial loss: a 25-layer Glorot product
starts close to zero (docs/protocols.md)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from bnrepro.data.core import Dataset, Split, generator

if TYPE_CHECKING:
    from bnrepro.config.schema import Linear


def a_std(cfg: Linear) -> float:
    """The std of A's entries that the config asks for."""
    if cfg.target_loss is None:
        return float(cfg.a_std)
    return math.sqrt(cfg.target_loss / (cfg.n_train * cfg.features ** 2 * cfg.x_std ** 2))


def linear_sizes(cfg: Linear) -> tuple[int, int, int]:
    """(training samples, test samples, input features), as the config sets them."""
    return cfg.n_train, cfg.n_test, cfg.features


def load_linear(cfg: Linear, device: torch.device) -> Dataset:
    g = generator(cfg.seed, "linear-regression")
    x_std, scale = float(cfg.x_std), a_std(cfg)
    # Drawn at unit scale, then scaled: at 1.0 the numbers are those of unscaled draws, bit for bit.
    a = torch.randn(cfg.features, cfg.features, generator=g) * scale
    splits = []
    for n in (cfg.n_train, cfg.n_test):
        x = torch.randn(n, cfg.features, generator=g) * x_std
        splits.append(Split(x.to(device), (x @ a.T).to(device)))
    return Dataset("linear", *splits, source=f"synthetic (data.seed={cfg.seed}, x_std={x_std:g}, a_std={scale:.4g})",
                   official=True, task="regression")
