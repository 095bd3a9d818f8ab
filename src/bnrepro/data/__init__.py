"""Datasets as whole tensors on the training device. One module per dataset; the shared pieces live in core."""

import warnings

import torch

from bnrepro.data.cifar10 import cifar10_sizes, load_cifar10, locate_cifar10
from bnrepro.data.core import (
    BatchSampler,
    Dataset,
    Split,
    generator,
    sparse_eval_layout,
    stream_seed,
    to_csr,
    unofficial,
)
from bnrepro.data.idx import idx_sizes, load_idx, locate_idx, read_idx
from bnrepro.data.linear import linear_sizes, load_linear
from bnrepro.paths import ENV_VAR

__all__ = ["ENV_VAR", "BatchSampler", "Dataset", "Split", "generator", "stream_seed", "to_csr", "unofficial",
           "load_dataset", "load_idx", "locate_idx", "read_idx", "load_cifar10", "locate_cifar10", "load_linear",
           "LOADERS", "TASKS", "sizes"]

# data.format -> its loader; data.name is free (it names the data in records and its cache folder).
LOADERS = {"idx": load_idx, "cifar10": load_cifar10, "linear": load_linear}
TASKS = {"idx": "classification", "cifar10": "classification", "linear": "regression"}
# data.format -> (training samples, test samples, input features or channels) read from the files' headers or the
# config, without loading the data: None where they cannot be known yet (a download or an extraction to come).
SIZES = {"idx": idx_sizes, "cifar10": cifar10_sizes, "linear": linear_sizes}


def sizes(cfg) -> tuple[int, int, int] | None:
    """cfg: the data group (config.schema: Idx, Cifar10 or Linear)."""
    return SIZES[cfg.format](cfg)


def load_dataset(cfg, device: torch.device) -> Dataset:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        data = LOADERS[cfg.format](cfg, device)
        if data.test.transform is None and hasattr(cfg, "sparse_eval"):  # a CSR copy only for model-ready inputs
            sparse_eval_layout(data.test, cfg.sparse_eval, device)
    return data
