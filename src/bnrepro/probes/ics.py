"""Internal covariate shift, optimisation view (Santurkar et al. 2018, Definition 2.1; the article's Fig 7).

At step t, for layer i: G is the gradient of the loss with respect to W_i on the step's batch (the gradient
training just computed), and G' the same gradient on the same batch after W_1..W_{i-1} (every parameter of the
earlier layers, normalisation included) have taken this step's update, with W_i..W_k unchanged. The probe
reports ||G - G'||_2, cos(G, G') and ||G||.

G' is evaluated with torch.func.functional_call on copies of the weights, so the module's parameters, their
.grad buffers, the normalisation layers' running statistics and every RNG stream stay as training left them.
Noisy BN replays the noise the step drew, so G and G' differ only by the earlier layers' update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call

from bnrepro.models import layer_weight
from bnrepro.probes.context import NoiseReplay, frozen_norm_stats


def layer_numbers(model: nn.Module) -> dict[str, int]:
    """Parameter name -> the number (from 1) of the layer in model.layers() that owns it."""
    names = {id(p): n for n, p in model.named_parameters()}
    owner = {names[id(p)]: i for i, layer in enumerate(model.layers(), start=1) for p in layer.parameters()}
    orphans = sorted(set(names.values()) - set(owner))
    if orphans:
        raise ValueError(f"parameters outside model.layers(): {orphans}")
    return owner


class ICSProbe:
    def __init__(self, model: nn.Module, loss_fn: Callable, layers: Sequence[int] | None = None,
                 replay: NoiseReplay | None = None, autocast: Callable = contextlib.nullcontext):
        self.model, self.loss_fn, self.autocast = model, loss_fn, autocast
        self.replay = replay or NoiseReplay(model)
        self.layer_of = layer_numbers(model)
        model_layers = model.layers()
        self.layers = list(layers or model.ICS_LAYERS)  # numbers in 2..len(model_layers): config.validate
        names = {id(p): n for n, p in model.named_parameters()}
        self.weight_name = {i: names[id(layer_weight(model_layers[i - 1]))] for i in self.layers}
        self._old: dict[str, torch.Tensor] | None = None
        self._G: dict[int, torch.Tensor] = {}

    def before_step(self) -> None:
        """After backward, before the optimizer step: keep G and the weights the step starts from."""
        params = dict(self.model.named_parameters())
        self._old = {n: p.detach().clone() for n, p in params.items()}
        self._G = {i: params[self.weight_name[i]].grad.detach().clone() for i in self.layers}

    def after_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        if self._old is None:
            raise RuntimeError("ICSProbe.after_step without before_step")
        new = {n: p.detach() for n, p in self.model.named_parameters()}
        out: dict[str, float] = {}
        with frozen_norm_stats(self.model, "batch"):
            for i in self.layers:
                params = {n: new[n] if self.layer_of[n] < i else self._old[n] for n in new}
                w = params[self.weight_name[i]].clone().requires_grad_(True)
                params[self.weight_name[i]] = w
                self.replay.rewind()
                with self.autocast():
                    loss = self.loss_fn(functional_call(self.model, params, (x,)), y)
                (g_new,) = torch.autograd.grad(loss, [w])
                out.update(ics_metrics(self._G[i], g_new, f"ics/layer{i}"))
        self._old, self._G = None, {}
        return out


def ics_metrics(g: torch.Tensor, g_new: torch.Tensor, prefix: str) -> dict[str, float]:
    a, b = g.double().reshape(-1), g_new.double().reshape(-1)
    na, nb = torch.linalg.vector_norm(a), torch.linalg.vector_norm(b)
    return {
        f"{prefix}/l2": float(torch.linalg.vector_norm(a - b)),
        f"{prefix}/cos": float(a @ b / (na * nb)),
        f"{prefix}/gnorm": float(na),
    }
