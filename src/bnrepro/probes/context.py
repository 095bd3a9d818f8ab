"""How a probe runs the model without changing training: normalisation layers frozen, noise replayed."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from bnrepro.models import NORM_LAYERS, NoisyBatchNorm, layer_weight


@contextlib.contextmanager
def frozen_norm_stats(model: nn.Module, bn_stats: str = "batch", noise: str = "probe"):
    """Normalisation layers (BN, noisy BN, lp) normalise with batch statistics ("batch", as in training) or their
    running statistics ("running", as at inference), and update nothing. Noisy BN draws from its `noise` stream
    meanwhile ("probe": fresh noise; "same": the same noise at every call; or a training step's noise replayed,
    see NoiseReplay), never from the one training uses."""
    norms = [m for m in model.modules() if isinstance(m, NORM_LAYERS)]
    saved = [(m.training, m.track_running_stats, getattr(m, "stream", None)) for m in norms]
    try:
        for m in norms:
            if bn_stats == "batch":
                m.train()
                m.track_running_stats = False  # no running-stat or num_batches_tracked update
            else:
                m.eval()
            if isinstance(m, NoisyBatchNorm):
                m.stream = noise
        yield
    finally:
        for m, (training, track, stream) in zip(norms, saved):
            m.train(training)
            m.track_running_stats = track
            if stream is not None:
                m.stream = stream


@contextlib.contextmanager
def inputs_of(modules: dict[str, nn.Module]):
    """The input each named module receives in the forward passes inside the block, by name (the last one wins)."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_pre_hook(lambda _m, args, name=name: captured.__setitem__(name, args[0]))
             for name, module in modules.items()]
    try:
        yield captured
    finally:
        for h in hooks:
            h.remove()


def layer_gradients(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> tuple[list, tuple]:
    """Each layer's weight W_i (model.layers()) and ∂L/∂W_i on the batch, the normalisation layers normalising by
    it as in training: by torch.autograd.grad, into new tensors, so that no .grad buffer is touched."""
    weights = [layer_weight(layer) for layer in model.layers()]
    with frozen_norm_stats(model):
        return weights, torch.autograd.grad(loss_fn(model(x), y), weights)


class NoiseReplay:
    """Lets a probe see a training step's noisy-BN noise again: snapshot() before the step's forward, then
    rewind() (inside frozen_norm_stats) before each probe forward. A no-op for models without noisy BN."""

    def __init__(self, model: nn.Module):
        self.modules = [m for m in model.modules() if isinstance(m, NoisyBatchNorm)]
        self.states: list[torch.Tensor] = []

    def snapshot(self) -> None:
        self.states = [m.snapshot() for m in self.modules]

    def rewind(self) -> None:
        for m, state in zip(self.modules, self.states):
            m.replay(state)
