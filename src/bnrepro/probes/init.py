"""The network at initialisation, before its first step: how the gradient's size changes with depth (Yang et al.
2019: in deep fully connected networks with BN it grows exponentially towards the input) and the rank of each
layer's batch representation (Daneshmand et al. 2020: without normalisation it collapses with depth). Read on a
fixed batch with the normalisation layers normalising by the batch, as in training, and nothing written: weights,
gradient buffers and running statistics are as before."""

from __future__ import annotations

import torch
from torch import nn

from bnrepro.probes.context import inputs_of, layer_gradients


def effective_rank(h: torch.Tensor) -> float:
    """exp of the entropy of the normalised singular values of a batch of representations (rows: samples; Roy &
    Vetterli 2007): from 1 (every row on one line) to min(rows, columns) (all directions used alike)."""
    s = torch.linalg.svdvals(h.detach().double().reshape(len(h), -1))
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


class InitProbe:
    """init/layer<i>/rank: the effective rank of layer #i's batch representation (the input of its activation, as
    the percentile probes read it); init/layer<i>/grad_norm: ‖∂L/∂W_i‖ of layer #i's weight on the batch."""

    def __init__(self, model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor):
        self.model, self.loss_fn, self.x, self.y = model, loss_fn, x, y

    def __call__(self) -> dict[str, float]:
        with inputs_of(self.model.taps()) as captured:
            _, grads = layer_gradients(self.model, self.loss_fn, self.x, self.y)
        out = {f"init/{name}/rank": effective_rank(h) for name, h in captured.items()}
        out.update({f"init/layer{i}/grad_norm": float(g.norm()) for i, g in enumerate(grads, start=1)})
        return out
