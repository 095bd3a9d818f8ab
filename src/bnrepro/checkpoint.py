"""A run's checkpoint: everything the loop needs to go on at the next step exactly as if it had never stopped
(weights, optimiser, every RNG stream, the step log, the metric rows, what W&B has been sent), written atomically
into checkpoint.pt. A run resumed from it ends with the weights and metrics of an uninterrupted run, bit for bit on
the CPU (tests/test_resume.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from bnrepro.io_utils import replace_atomic
from bnrepro.models import NoisyBatchNorm

FILE = "checkpoint.pt"


def generators(model: torch.nn.Module, extra: dict[str, torch.Generator]) -> dict[str, torch.Generator]:
    """Every RNG stream training draws from after the start: noisy BN's per-layer streams, and `extra` (data order,
    augmentation). The probe batch is drawn once at the start, from its own stream, and is drawn again on resume."""
    streams = dict(extra)
    for name, m in model.named_modules():
        if isinstance(m, NoisyBatchNorm):
            for stream in ("train", "probe"):
                streams[f"{name}:{stream}"] = m._stream_generator(stream, m.weight.device)
    return streams


def save(path: Path, step: int, config: str, loop) -> None:
    rec, sampler = loop.record, loop.sampler
    rec.steps.reduce()
    state = {
        "step": step,
        "config": config,
        "model": loop.model.state_dict(),
        "momentum_buffer": loop.opt.momentum_buffer,
        "rng": {name: g.get_state() for name, g in loop.streams.items()},
        "torch_rng": torch.get_rng_state(),
        "sampler": {"epoch": sampler.epoch, "i": sampler._i, "perm": sampler._perm},
        "moments": dict(loop.measure.probe.last_moments) if loop.measure.probe is not None else {},
        "steps": {"losses": rec.steps.losses[:step].clone(), "correct": rec.steps.correct[:step].clone()},
        "record": {k: getattr(rec, k) for k in ("logged", "sent", "pending", "last_test", "last_test_step",
                                                "best_test_acc", "diverged_at")},
        "rows": rec.store.rows(),
    }
    replace_atomic(Path(path), lambda tmp: torch.save(state, tmp))


def load(path: Path) -> dict | None:
    path = Path(path)
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def restore(state: dict, loop) -> int:
    """Put a checkpoint's state back into a freshly built loop; returns the step it was taken after."""
    rec, sampler, step = loop.record, loop.sampler, state["step"]
    device = rec.steps.losses.device
    loop.model.load_state_dict(state["model"])  # in place: the parameters stay views of the optimiser's buffer
    if state["momentum_buffer"] is not None:
        loop.opt.momentum_buffer = state["momentum_buffer"].to(device)
    for name, g in loop.streams.items():
        g.set_state(state["rng"][name])
    torch.set_rng_state(state["torch_rng"])
    s = state["sampler"]
    sampler.epoch, sampler._i = s["epoch"], s["i"]
    sampler._perm = None if s["perm"] is None else s["perm"].to(device)
    if loop.measure.probe is not None:
        loop.measure.probe.last_moments = dict(state["moments"])
    rec.steps.losses[:step] = state["steps"]["losses"].to(device)
    rec.steps.correct[:step] = state["steps"]["correct"].to(device)
    rec.steps.recorded = step
    for k, v in state["record"].items():
        setattr(rec, k, v)
    rec.store.extend(state["rows"])
    loop.steps_done = step
    return step
