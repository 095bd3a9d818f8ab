"""Datasets as whole tensors on the training device, and an index-slice batch sampler.

MNIST is read through torchvision's dataset class, which wants the unpacked IDX files in
<root>/MNIST/raw. The offline copies ship only the official .gz files, in a read-only folder, so
those are verified against the official md5s and unpacked into `data.cache_dir`; the data root is
never written to, except by a download into a missing, writable folder.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from omegaconf import DictConfig

from bnrepro import DataError

ENV_VAR = "BNREPRO_DATA"
log = logging.getLogger(__name__)

# The official files' checksums. The .gz md5s are torchvision's (MNIST.resources; tests/test_data.py checks they
# still agree); kept here so that verifying needs no torchvision import, which costs ~1.8 s per process.
MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# SHA-256 of the official uncompressed IDX files (torchvision only knows the .gz md5s).
MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@dataclass
class Split:
    x: torch.Tensor  # float32 [N, features] on the training device
    y: torch.Tensor  # int64 [N]
    x_eval: torch.Tensor | None = None  # the same inputs in the fastest exact layout for inference

    def __len__(self) -> int:
        return self.y.shape[0]

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
        # index_select is ~4x cheaper than x[idx] for a batch of rows on the CPU.
        return self.split.x.index_select(0, idx), self.split.y.index_select(0, idx)


# --------------------------------------------------------------------------- files


def _file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _writable(folder: Path) -> bool:
    """Writable for us *and* meant to be: root ignores permission bits, so a read-only mode is honoured explicitly."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.stat().st_mode & 0o222:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _network_available(url: str, timeout: float = 3.0) -> bool:
    host = urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _missing_error(raw: Path, missing: list[str]) -> DataError:
    return DataError(
        f"MNIST files not found in {raw} (missing: {', '.join(missing)}), and they cannot be downloaded "
        f"(no network, or data.download=false). Point data.root or the {ENV_VAR} environment variable at a "
        f"folder that holds MNIST/raw/ with the official files, e.g. {ENV_VAR}=../shared/datasets."
    )


def _idx_digests(folder: Path) -> dict[str, str]:
    return {name: _file_digest(folder / name, "sha256") for name in MNIST_IDX_SHA256}


def _unofficial(what: str, allow: bool) -> None:
    """Files that parse but fail the official checksums: refused, unless the user opts in knowingly."""
    if not allow:
        raise DataError(
            f"corrupt or unofficial data: {what}. Replace the files with the official ones, or set "
            "data.allow_unofficial=true to use them anyway (runs and figures are then marked data_official=false)."
        )
    msg = f"USING UNOFFICIAL DATA: {what}. Results are marked data_official=false and are not comparable to papers."
    log.warning(msg)
    warnings.warn(msg, stacklevel=3)


def _check_gz(src_raw: Path, allow: bool) -> bool:
    """True when every .gz matches the official md5."""
    bad = [f"{src_raw / n} has md5 {got}, expected the official {md5}"
           for n, md5 in MNIST_GZ_MD5.items() if (got := _file_digest(src_raw / n, "md5")) != md5]
    if bad:
        _unofficial("; ".join(bad), allow)
    return not bad


def _unpack_gz(src_raw: Path, dst_raw: Path) -> None:
    dst_raw.mkdir(parents=True, exist_ok=True)
    for gz_name in MNIST_GZ_MD5:
        target = dst_raw / gz_name[: -len(".gz")]
        tmp = target.with_name(f"{target.name}.{os.getpid()}.part")  # parallel jobs may unpack at once
        try:
            with gzip.open(src_raw / gz_name, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        except (OSError, EOFError) as e:
            raise DataError(f"corrupt data: cannot decompress {src_raw / gz_name} ({e})") from e
        os.replace(tmp, target)  # atomic: a crash never leaves a half-written IDX file behind


def locate_mnist(cfg: DictConfig) -> tuple[Path, dict[str, str]]:
    """A root whose MNIST/raw holds the IDX files (unpacking or downloading as needed), and their SHA-256s."""
    root = Path(cfg.root).expanduser().resolve()
    raw = root / "MNIST" / "raw"
    idx_names, gz_names = list(MNIST_IDX_SHA256), list(MNIST_GZ_MD5)
    allow = bool(cfg.get("allow_unofficial", False))

    if all((raw / n).is_file() for n in idx_names):
        return root, _idx_digests(raw)
    if all((raw / n).is_file() for n in gz_names):
        # The data root is input only (often a shared, read-only folder): unpack into the cache.
        cache_root = Path(cfg.cache_dir).expanduser().resolve() / "mnist"
        cache_raw = cache_root / "MNIST" / "raw"
        official_gz = _check_gz(raw, allow)
        if official_gz and all((cache_raw / n).is_file() for n in idx_names):
            digests = _idx_digests(cache_raw)
            if digests == MNIST_IDX_SHA256:
                return cache_root, digests
        _unpack_gz(raw, cache_raw)  # first use, a stale cache, or unofficial files (never trusted from cache)
        return cache_root, _idx_digests(cache_raw)
    missing = [n for n in gz_names if not (raw / n).is_file()]
    if cfg.download:
        from torchvision.datasets import MNIST

        # The network first: a failed attempt must not leave empty folders behind.
        if _network_available(MNIST.mirrors[0]) and _writable(raw):
            MNIST(str(root), train=True, download=True)
            return root, _idx_digests(raw)
    raise _missing_error(raw, missing)


def _read_mnist(root: Path, cache_dir: Path, digests: dict[str, str]) -> dict[str, torch.Tensor]:
    """Decode through torchvision's MNIST class once; later runs load the decoded tensors (~0.1 s instead of ~2 s,
    most of it torchvision's import). The cache is keyed by the IDX files' SHA-256s and checked on every load."""
    key = hashlib.sha256("".join(digests[n] for n in sorted(digests)).encode()).hexdigest()[:16]
    cache = Path(cache_dir).expanduser().resolve() / "mnist" / f"tensors-{key}.pt"
    if cache.is_file():
        try:
            blob = torch.load(cache, map_location="cpu", weights_only=True)
            if blob["digest"] == _tensor_digest(blob["tensors"]):
                return blob["tensors"]
        except Exception:  # unreadable or stale: rebuild below
            pass
    from torchvision.datasets import MNIST

    tensors = {}
    try:
        for split, train in (("train", True), ("test", False)):
            ds = MNIST(str(root), train=train, download=False)
            tensors[f"{split}_x"] = ds.data.reshape(len(ds.data), -1).contiguous()
            tensors[f"{split}_y"] = ds.targets.to(torch.int64)
    except (RuntimeError, ValueError, AssertionError) as e:
        raise DataError(f"cannot parse the MNIST files in {root / 'MNIST' / 'raw'}: {e}") from e
    if _writable(cache.parent):
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")  # parallel jobs may write at once
        torch.save({"digest": _tensor_digest(tensors), "tensors": tensors}, tmp)
        os.replace(tmp, cache)
    return tensors


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].contiguous().numpy().tobytes())
    return h.hexdigest()


def load_mnist(cfg: DictConfig, device: torch.device) -> Dataset:
    root, digests = locate_mnist(cfg)
    official = digests == MNIST_IDX_SHA256
    if not official:
        bad = [f"{n} has SHA-256 {d[:12]}..." for n, d in digests.items() if d != MNIST_IDX_SHA256[n]]
        _unofficial(f"{root / 'MNIST' / 'raw'}: {'; '.join(bad)} (not the official files)",
                    bool(cfg.get("allow_unofficial", False)))
    t = _read_mnist(root, cfg.cache_dir, digests)
    splits = {
        name: Split(x=t[f"{name}_x"].to(device=device, dtype=torch.float32).div_(255.0), y=t[f"{name}_y"].to(device))
        for name in ("train", "test")
    }
    if cfg.normalize:
        # Statistics measured on the training split only, then applied to both.
        mean, std = splits["train"].x.mean(), splits["train"].x.std()
        for s in splits.values():
            s.x.sub_(mean).div_(std)
    return Dataset("mnist", splits["train"], splits["test"], source=str(root / "MNIST" / "raw"), official=official)


def sparse_eval_layout(split: Split, mode, device: torch.device) -> None:
    """Store a CSR copy of the inputs for inference when that is exact and faster (CPU, mostly zeros)."""
    density = float((split.x != 0).float().mean())
    use = (device.type == "cpu" and density < 0.5) if mode == "auto" else bool(mode)
    split.x_eval = split.x.to_sparse_csr() if use else None


LOADERS = {"mnist": load_mnist}


def load_dataset(cfg: DictConfig, device: torch.device) -> Dataset:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        data = LOADERS[cfg.name](cfg, device)
        sparse_eval_layout(data.test, cfg.sparse_eval, device)
    return data
