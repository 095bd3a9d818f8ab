"""SGD over one contiguous buffer that holds every parameter.

torch.optim.SGD spends ~60 us of Python per step on the small MLP (param groups, hooks, state
lookup), ~7% of a whole step at batch 60. Here the module's parameters are views into one flat
tensor and their .grad views into one flat gradient, so zeroing and the update are one op each.
The arithmetic is torch.optim.SGD's (same order of operations), so results are bitwise identical;
tests/test_optim.py checks that against torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import torch
from torch import nn


class FlatSGD:
    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        # Each parameter keeps its memory layout (channels_last stays channels_last): its slice of the buffer holds
        # its values in memory order, and the view restores its shape and strides.
        orders = [memory_order(p) for p in self.params]
        with torch.no_grad():
            self.flat = torch.cat([p.detach().permute(o).reshape(-1) for p, o in zip(self.params, orders)])
        self.grad = torch.zeros_like(self.flat)
        offset = 0
        for p, order in zip(self.params, orders):
            n = p.numel()
            p.data = _view(self.flat[offset : offset + n], p, order)
            # Autograd accumulates in place into an existing .grad, so backward() writes straight into the buffer.
            p.grad = _view(self.grad[offset : offset + n], p, order)
            offset += n
        self.momentum_buffer: torch.Tensor | None = None

    def zero_grad(self) -> None:
        self.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        d_p = self.grad
        if self.weight_decay:
            d_p = d_p.add(self.flat, alpha=self.weight_decay)
        if self.momentum:
            if self.momentum_buffer is None:
                self.momentum_buffer = d_p.clone()
            else:
                self.momentum_buffer.mul_(self.momentum).add_(d_p, alpha=1 - self.dampening)
            d_p = d_p.add(self.momentum_buffer, alpha=self.momentum) if self.nesterov else self.momentum_buffer
        self.flat.add_(d_p, alpha=-self.lr)

    def state_dict(self) -> dict:
        return {"momentum_buffer": self.momentum_buffer}

    def load_state_dict(self, state: dict) -> None:
        buf = state["momentum_buffer"]
        self.momentum_buffer = None if buf is None else buf.to(self.flat.device)


def memory_order(t: torch.Tensor) -> list[int]:
    """t's dimensions from the outermost in memory to the innermost (0..n-1 for a contiguous tensor)."""
    return sorted(range(t.dim()), key=lambda d: (-t.stride(d), d))


def _view(chunk: torch.Tensor, like: torch.Tensor, order: list[int]) -> torch.Tensor:
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return chunk.view([like.shape[d] for d in order]).permute(inverse)


# optim=<name> (config.schema: SGD, Adam) holds `name`, the schedule's keys and exactly the optimizer's keyword
# arguments. Each has state_dict() and load_state_dict(), which the checkpoint keeps.
OPTIMIZERS = {"sgd": FlatSGD, "adam": torch.optim.Adam}
SCHEDULE_KEYS = ("warmup_steps",)  # the learning rate's schedule (schedule() below), not the optimiser's


def build_optimizer(cfg, model: nn.Module):
    """cfg: the optim group, as its schema's object."""
    kwargs = dataclasses.asdict(cfg)
    for key in SCHEDULE_KEYS:
        kwargs.pop(key)
    return OPTIMIZERS[kwargs.pop("name")](model.parameters(), **kwargs)


def current_lr(opt) -> float:
    """The learning rate the optimiser's next step uses."""
    return float(opt.lr if isinstance(opt, FlatSGD) else opt.param_groups[0]["lr"])


def set_lr(opt, lr: float) -> None:
    if isinstance(opt, FlatSGD):
        opt.lr = lr
    else:
        for group in opt.param_groups:
            group["lr"] = lr


class Warmup:
    """Linear learning-rate warm-up: step t (from 1) of the first `steps` uses lr·t/steps, then lr. A function of
    the step alone, so that a resumed run takes the rates an uninterrupted one takes."""

    def __init__(self, opt, lr: float, steps: int):
        self.opt, self.lr, self.steps = opt, lr, steps

    def __call__(self, step: int) -> None:
        if step <= self.steps + 1:
            set_lr(self.opt, self.lr * min(1.0, step / self.steps))


def schedule(cfg, opt) -> Warmup | None:
    """The optim group's learning-rate schedule (optim.warmup_steps), or None: a constant rate."""
    return Warmup(opt, cfg.lr, cfg.warmup_steps) if cfg.warmup_steps else None
