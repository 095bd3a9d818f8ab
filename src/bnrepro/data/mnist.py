"""MNIST, read through torchvision's dataset class, which wants the unpacked IDX files in
<root>/MNIST/raw. The offline copies ship only the official .gz files, in a read-only folder, so
those are verified against the official md5s and unpacked into `data.cache_dir`; the data root is
never written to, except by a download into a missing, writable folder."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import torch
from omegaconf import DictConfig

from bnrepro import DataError
from bnrepro.data.core import ENV_VAR, Dataset, Split, _file_digest, _network_available, _writable, unofficial

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


def _missing_error(raw: Path, missing: list[str]) -> DataError:
    return DataError(
        f"MNIST files not found in {raw} (missing: {', '.join(missing)}), and they cannot be downloaded "
        f"(no network, or data.download=false). Point data.root or the {ENV_VAR} environment variable at a "
        f"folder that holds MNIST/raw/ with the official files, e.g. {ENV_VAR}=../shared/datasets."
    )


def _idx_digests(folder: Path) -> dict[str, str]:
    return {name: _file_digest(folder / name, "sha256") for name in MNIST_IDX_SHA256}


def _check_gz(src_raw: Path, allow: bool) -> bool:
    """True when every .gz matches the official md5."""
    bad = [f"{src_raw / n} has md5 {got}, expected the official {md5}"
           for n, md5 in MNIST_GZ_MD5.items() if (got := _file_digest(src_raw / n, "md5")) != md5]
    if bad:
        unofficial("; ".join(bad), allow)
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
        unofficial(f"{root / 'MNIST' / 'raw'}: {'; '.join(bad)} (not the official files)",
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


