"""A run's checkpoint: everything the loop needs to go on at the next step exactly as if it had never stopped
(weights, optimiser, every RNG stream, the step log, the metric rows, what W&B has been sent), written atomically
into checkpoint.pt. A run resumed from it ends with the weights and metrics of an uninterrupted run, bit for bit on
the CPU (tests/test_resume.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from bnrepro import BnreproError
from bnrepro.io_utils import save_torch
from bnrepro.models import NoisyBatchNorm

FILE = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"  # the one before, kept until the next is in place: what a damaged FILE falls back to
log = logging.getLogger("bnrepro")


class CheckpointError(BnreproError):
    """A checkpoint that cannot be read, with no earlier one that can."""


def generators(model: torch.nn.Module, extra: dict[str, torch.Generator]) -> dict[str, torch.Generator]:
    """Every RNG stream training draws from after the start: noisy BN's per-layer streams, and `extra` (data order,
    augmentation). The probe batch is drawn once at the start, from its own stream, and is drawn again on resume."""
    streams = dict(extra)
    for name, m in model.named_modules():
        if isinstance(m, NoisyBatchNorm):
            streams.update({f"{name}:{stream}": g for stream, g in m.streams().items()})
    return streams


VERSION = 2  # 1: the same state under other keys (checkpoints written before 2026-12-03), upgraded on load


def save(path: Path, step: int, config: str, loop) -> None:
    """Each stateful part's state_dict(), and the RNG streams they share."""
    record = loop.record.state_dict()
    if len(record["steps"]["losses"]) != step:
        raise RuntimeError(f"checkpoint at step {step} but the step log holds {len(record['steps']['losses'])} steps")
    state = {
        "version": VERSION,
        "step": step,
        "config": config,
        "model": loop.model.state_dict(),
        "optimizer": loop.opt.state_dict(),
        "sampler": loop.sampler.state_dict(),
        "probe": loop.measure.probe.state_dict() if loop.measure.probe is not None else None,
        "record": record,
        "rng": {name: g.get_state() for name, g in loop.streams.items()},
        "torch_rng": torch.get_rng_state(),
    }
    path = Path(path)

    def keep_previous() -> None:  # the new one is complete: the current one becomes the previous one
        if path.is_file():
            os.replace(path, path.with_name(PREVIOUS))

    save_torch(state, path, before_replace=keep_previous)


def load(path: Path) -> dict | None:
    """The checkpoint in `path`, or the previous one beside it when `path` is damaged (truncated, say, by a full disk
    or a copy cut short); None when there is none. The state's "loaded_from" names the file read. CheckpointError
    names the files and the choices when none loads."""
    path = Path(path)
    damaged = []
    for candidate in (path, path.with_name(PREVIOUS)):
        if not candidate.is_file():
            continue
        try:
            state = upgrade(torch.load(candidate, map_location="cpu", weights_only=False))
        except Exception:  # torch raises RuntimeError, EOFError, UnpicklingError, KeyError... for damaged files
            damaged.append(candidate.name)
            continue
        if damaged:
            log.warning("%s cannot be read: resuming from the previous checkpoint, %s (step %d)", path, candidate.name,
                        state["step"])
        state["loaded_from"] = candidate.name
        return state
    if damaged:
        nor = f"nor the previous one, {PREVIOUS}" if len(damaged) > 1 else "and there is no readable previous one"
        raise CheckpointError(f"damaged checkpoint: {path.parent / damaged[0]} cannot be read, {nor}: force=true "
                              f"starts this run again from step 0 in its folder")
    return None


def remove(path: Path) -> None:
    """A finished run's checkpoints (the last one and the one before)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    path.with_name(PREVIOUS).unlink(missing_ok=True)


def upgrade(state: dict) -> dict:
    """A version-1 checkpoint in the version-2 layout (the same values: a run interrupted before still resumes)."""
    if state.get("version", 1) == VERSION:
        return state
    s = state["sampler"]
    return {
        "version": VERSION, "step": state["step"], "config": state["config"], "model": state["model"],
        "optimizer": {"momentum_buffer": state["momentum_buffer"]},
        "sampler": {"epoch": s["epoch"], "i": s["i"], "perm": s["perm"]},
        "probe": {"moments": state["moments"]},
        "record": {"record": state["record"], "steps": state["steps"], "rows": state["rows"]},
        "rng": state["rng"], "torch_rng": state["torch_rng"],
    }


def restore(state: dict, loop) -> int:
    """Put a checkpoint's state back into a freshly built loop; returns the step it was taken after."""
    loop.model.load_state_dict(state["model"])  # in place: the parameters stay views of the optimiser's buffer
    loop.opt.load_state_dict(state["optimizer"])
    loop.sampler.load_state_dict(state["sampler"])
    if loop.measure.probe is not None and state["probe"] is not None:
        loop.measure.probe.load_state_dict(state["probe"])
    loop.record.load_state_dict(state["record"])
    for name, g in loop.streams.items():
        g.set_state(state["rng"][name])
    torch.set_rng_state(state["torch_rng"])
    loop.steps_done = state["step"]
    return state["step"]
