"""What every dataset shares: splits as device tensors, RNG streams, the index-slice sampler, file checks."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from bnrepro import DataError

log = logging.getLogger("bnrepro.data")


@dataclass
class Split:
    x: torch.Tensor  # the whole split on the training device: float32 [N, features], or uint8 images [N, C, H, W]
    y: torch.Tensor  # int64 class labels [N], or float targets [N, outputs] for regression
    x_eval: torch.Tensor | None = None  # the same inputs in the fastest exact layout for inference
    # Applied to whole batches on the device (e.g. uint8 -> normalised float); None when x is model-ready.
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    # Training batches only, after the transform (data.augment); never used for evaluation or probes.
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    # The layout every prepared batch ends in (trainer.channels_last), for training, evaluation and probes alike.
    memory_format: torch.memory_format | None = None

    def __len__(self) -> int:
        return self.y.shape[0]

    def chunks(self, size: int):
        """The whole split in order, `size` rows at a time, model-ready (for evaluation)."""
        for i in range(0, len(self), size):
            x = self.x[i : i + size]
            yield self._layout(x if self.transform is None else self.transform(x)), self.y[i : i + size]

    def batch(self, idx: torch.Tensor, augment: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        # index_select is ~4x cheaper than x[idx] for a batch of rows on the CPU.
        x = self.x.index_select(0, idx)
        x = x if self.transform is None else self.transform(x)
        if augment and self.augment is not None:
            x = self.augment(x)
        return self._layout(x), self.y.index_select(0, idx)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.memory_format is None else x.contiguous(memory_format=self.memory_format)

    @property
    def eval_input(self) -> torch.Tensor:
        return self.x if self.x_eval is None else self.x_eval


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    source: str  # the folder the files were read from
    official: bool  # the files matched the official checksums
    task: str = "classification"  # or "regression": y holds float targets, there is no accuracy

    @property
    def in_features(self) -> int:
        return self.train.x.shape[1]


def stream_seed(seed: int, stream: str) -> int:
    """Independent, reproducible seeds per purpose: adding a random draw in one stream never shifts another."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(stream_seed(seed, stream))
    return g


class BatchSampler:
    """Batches are index slices of a per-epoch permutation; the last incomplete slice of an epoch is dropped."""

    def __init__(self, split: Split, batch_size: int, gen: torch.Generator):
        self.split, self.batch_size, self.gen = split, batch_size, gen
        self.per_epoch = len(split) // batch_size
        self.epoch, self._i, self._perm = 0, self.per_epoch, None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._i == self.per_epoch:
            self._perm = torch.randperm(len(self.split), generator=self.gen, device=self.gen.device)
            self._perm = self._perm.to(self.split.x.device)
            self._i, self.epoch = 0, self.epoch + 1
        idx = self._perm[self._i * self.batch_size : (self._i + 1) * self.batch_size]
        self._i += 1
        return self.split.batch(idx, augment=True)

    def state_dict(self) -> dict:
        """Where the sampler is in its epoch (its generator is one of the run's streams, saved with them)."""
        return {"epoch": self.epoch, "i": self._i, "perm": self._perm}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self._i = state["epoch"], state["i"]
        self._perm = None if state["perm"] is None else state["perm"].to(self.split.x.device)


# --------------------------------------------------------------------------- files


def file_digest(path: Path, algorithm: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def unofficial(what: str, allow: bool) -> None:
    """Files that parse but fail the official checksums: refused, unless the user opts in knowingly."""
    if not allow:
        raise DataError(
            f"corrupt or unofficial data: {what}. Replace the files with the official ones, or set "
            "data.allow_unofficial=true to use them anyway (runs and figures are then marked data_official=false)."
        )
    msg = f"USING UNOFFICIAL DATA: {what}. Results are marked data_official=false and are not comparable to papers."
    log.warning(msg)
    warnings.warn(msg, stacklevel=3)


def sparse_eval_layout(split: Split, mode, device: torch.device) -> None:
    """Store a CSR copy of the inputs for inference when that is exact and faster (CPU, mostly zeros)."""
    density = float((split.x != 0).float().mean())
    use = (device.type == "cpu" and density < 0.5) if mode == "auto" else bool(mode)
    split.x_eval = to_csr(split.x) if use else None


def to_csr(x: torch.Tensor) -> torch.Tensor:
    """A CSR copy with int32 indices: the CPU's sparse kernels take int32, and int64 indices cost a conversion of
    every index on every product (~10% of an MNIST evaluation). Same values, same products."""
    csr = x.to_sparse_csr()
    return torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape,
                                   check_invariants=True)
