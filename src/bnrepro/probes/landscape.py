"""The loss landscape along the gradient (Santurkar et al. 2018, App. A.2.2; the article's Fig 8).

At a training step with weights w and gradient g (the gradient training just computed, before the optimizer
step), the loss L and its gradient are evaluated at w - eta*g for each eta of a grid, on the same batch:

    loss range                 min and max over eta of L(w - eta*g)
    gradient predictiveness    min and max over eta of ||grad L(w) - grad L(w - eta*g)||_2
    effective beta-smoothness  max over eta of ||grad L(w) - grad L(w - eta*g)||_2 / ||eta*g||_2

and, at each eta, the loss and the gradient difference themselves (landscape/eta/<eta>/loss and .../gpred), which
Santurkar et al.'s Fig 11 draws against eta. All over every parameter of the model. The points are evaluated as
one batch (torch.func.vmap over stacked copies of the weights; `batched=False` loops instead, for comparison).
Nothing of the model is written: the weights are read, normalisation layers use batch statistics without updating
running ones, and noisy BN replays the step's noise, the same for every eta.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from bnrepro.probes.context import NoiseReplay, frozen_norm_stats


def eta_grid(lr: float, eta_min: float, eta_max: float, points: int, spacing: str = "linear") -> list[float]:
    """Step sizes from eta_min*lr to eta_max*lr (multiples of the learning rate)."""
    space = np.geomspace if spacing == "log" else np.linspace
    return [float(lr * m) for m in space(eta_min, eta_max, points)]


class LandscapeProbe:
    def __init__(self, model: nn.Module, loss_fn: Callable, etas: list[float], batched: bool = True,
                 replay: NoiseReplay | None = None, autocast: Callable = contextlib.nullcontext):
        self.model, self.loss_fn, self.etas, self.batched = model, loss_fn, list(etas), batched
        self.replay = replay or NoiseReplay(model)
        self.autocast = autocast

    def _loss(self, names: tuple[str, ...], x: torch.Tensor, y: torch.Tensor):
        def loss(params: tuple[torch.Tensor, ...]) -> torch.Tensor:
            with self.autocast():
                return self.loss_fn(functional_call(self.model, dict(zip(names, params)), (x,)), y)
        return loss

    def points(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L(w - eta*g) and ||grad L(w) - grad L(w - eta*g)||_2 for each eta (float64 tensors)."""
        named = [(n, p) for n, p in self.model.named_parameters()]
        names = tuple(n for n, _ in named)
        w = tuple(p.detach() for _, p in named)
        g = tuple(p.grad.detach() for _, p in named)
        loss = self._loss(names, x, y)
        with frozen_norm_stats(self.model, "batch"):
            if self.batched:
                eta = torch.tensor(self.etas, device=w[0].device, dtype=w[0].dtype)
                stacked = tuple(wi[None] - eta.view(-1, *[1] * wi.dim()) * gi[None] for wi, gi in zip(w, g))
                self.replay.rewind()
                grads, losses = vmap(grad_and_value(loss), randomness="same")(stacked)
                sq = sum((gi[None] - ge).double().pow(2).flatten(1).sum(1) for gi, ge in zip(g, grads))
                return losses.detach().double(), sq.sqrt()
            losses, diffs = [], []
            for e in self.etas:
                params = tuple((wi - e * gi).requires_grad_(True) for wi, gi in zip(w, g))
                self.replay.rewind()
                value = loss(params)
                grads = torch.autograd.grad(value, params)
                losses.append(value.detach().double())
                diffs.append(sum((gi - ge).double().pow(2).sum() for gi, ge in zip(g, grads)).sqrt())
            return torch.stack(losses), torch.stack(diffs)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        losses, diffs = self.points(x, y)
        gnorm = torch.sqrt(sum(p.grad.detach().double().pow(2).sum() for p in self.model.parameters()))
        eta = torch.tensor(self.etas, dtype=torch.float64, device=diffs.device)
        beta = diffs / (eta * gnorm)
        per_eta = {}
        for e, loss, diff in zip(self.etas, losses.tolist(), diffs.tolist()):
            per_eta[eta_key(e, "loss")] = loss
            per_eta[eta_key(e, "gpred")] = diff
        return {
            "landscape/loss_min": float(losses.min()),
            "landscape/loss_max": float(losses.max()),
            "landscape/gpred_min": float(diffs.min()),
            "landscape/gpred_max": float(diffs.max()),
            "landscape/beta": float(beta.max()),
            "landscape/beta_min": float(beta.min()),  # the band the figure shades; beta itself is the max
            "landscape/gnorm": float(gnorm),
            **per_eta,
        }


def eta_key(eta: float, stat: str) -> str:
    """The one place the per-step-size names are spelled: landscape/eta/<eta, 4 significant digits>/<stat>."""
    return f"landscape/eta/{eta:.4g}/{stat}"
