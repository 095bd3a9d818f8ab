"""The deep linear network's regression task (Santurkar et al. 2018, Appendix A): targets y = A x, with x ~ N(0, I)
and A a fixed Gaussian matrix. Both come from `data.seed`, so every run and variant sees the same problem."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from bnrepro.data.core import Dataset, Split, generator


def load_linear(cfg: DictConfig, device: torch.device) -> Dataset:
    g = generator(cfg.seed, "linear-regression")
    a = torch.randn(cfg.features, cfg.features, generator=g)
    splits = []
    for n in (cfg.n_train, cfg.n_test):
        x = torch.randn(n, cfg.features, generator=g)
        splits.append(Split(x.to(device), (x @ a.T).to(device)))
    return Dataset("linear", *splits, source=f"synthetic (data.seed={cfg.seed})", official=True, task="regression")
