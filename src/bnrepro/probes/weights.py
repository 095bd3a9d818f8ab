"""Scale invariance and the effective learning rate (van Laarhoven 2017; Hoffer et al. 2018; Arora, Li & Lyu 2019).
A weight followed by BN leaves the loss unchanged when it is scaled, each output unit's row (a conv layer's filter)
on its own: its gradient is orthogonal to it, plain SGD makes its norm grow (‖w'‖² = ‖w‖² + η²‖g‖²), and the step
it takes in direction is η/‖w‖², its effective learning rate. The probe reads each layer's weight, its gradient on the
probe batch (BN normalising by the batch, as in training) and the learning rate the optimiser uses now; it writes
nothing: weights, gradient buffers and running statistics are as before."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bnrepro.probes.context import layer_gradients


class WeightProbe:
    """weights/layer<i>/norm: ‖W_i‖ (Frobenius); weights/layer<i>/cos: W_i·∇W_i / (‖W_i‖‖∇W_i‖), 0 for a
    scale-invariant weight; weights/layer<i>/eff_lr: η / (mean over its rows of ‖w_r‖²), the effective learning
    rate of a layer whose rows are each scale invariant (meaningful for the layers BN follows)."""

    def __init__(self, model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, lr: Callable[[], float]):
        self.model, self.loss_fn, self.x, self.y, self.lr = model, loss_fn, x, y, lr

    def __call__(self) -> dict[str, float]:
        weights, grads = layer_gradients(self.model, self.loss_fn, self.x, self.y)
        lr, out = self.lr(), {}
        for i, (w, g) in enumerate(zip(weights, grads), start=1):
            w, g = w.detach().double(), g.double()  # the cosine is compared with 0: no float32 cancellation in it
            norm, gnorm = w.norm(), g.norm()
            out[f"weights/layer{i}/norm"] = float(norm)
            out[f"weights/layer{i}/cos"] = float((w * g).sum() / (norm * gnorm)) if gnorm > 0 else 0.0
            out[f"weights/layer{i}/eff_lr"] = float(lr / w.flatten(1).pow(2).sum(1).mean())
        return out
