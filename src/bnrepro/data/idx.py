"""Datasets in the IDX format (MNIST and its relatives: Fashion-MNIST, KMNIST, EMNIST), described entirely by their
config: the folder under the data root, the four file names, the official checksums, an optional torchvision class
to download with. A new dataset in this format is one file in configs/data/ (docs/extending.md).

The offline copies ship only the .gz files, in a read-only folder, so those are verified against the official md5s
and unpacked into `data.cache_dir`; the data root is never written to, except by a download into a missing,
writable folder."""

from __future__ import annotations

import gzip
import hashlib
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from bnrepro import DataError
from bnrepro.data.core import Dataset, Split, file_digest, unofficial
from bnrepro.io_utils import reachable, replace_atomic, writable_folder
from bnrepro.paths import ENV_VAR

if TYPE_CHECKING:
    from bnrepro.config.schema import Idx

log = logging.getLogger("bnrepro.data")
ROLES = ("train_images", "train_labels", "test_images", "test_labels")


def _missing_error(cfg: Idx, raw: Path, missing: list[str]) -> DataError:
    head = (f"{cfg.name} files not found in {raw} (missing: {', '.join(missing)}), and they cannot be downloaded "
            f"(no network, no data.torchvision class, or data.download=false). ")
    root = Path(cfg.root).expanduser().resolve()
    for folder in (root, *sorted(p for p in root.glob("*/") if p.is_dir())[:50]):
        if folder != raw and all((folder / n).is_file() or (folder / f"{n}.gz").is_file() for n in missing):
            # The files are there, in another layout (a flat folder, such as a distribution package's)
            where = folder.relative_to(root).as_posix() if folder != root else "."
            return DataError(head + f"They are in {folder}: data.folder={where} reads them there (data.folder is "
                                    f"the folder under data.root that holds the files, now {cfg.folder!r}).")
    return DataError(head + f"Point data.root or the {ENV_VAR} environment variable at a folder that holds "
                            f"{cfg.folder}/ with the files (e.g. {ENV_VAR}=../shared/datasets), or data.folder at "
                            f"the folder under data.root that holds them.")


def _digests(cfg: Idx, folder: Path) -> dict[str, str]:
    return {cfg.files[r]: file_digest(folder / cfg.files[r], "sha256") for r in ROLES}


def _check_gz(cfg: Idx, raw: Path, found: dict[str, str]) -> bool:
    """True when every .gz matches its official md5 (False when the config lists none); `found`: the .gz files'
    md5s, by file name, as read once."""
    md5s = dict(cfg.gz_md5 or {})
    bad = [f"{raw / n} has md5 {got}, expected the official {md5}"
           for n, md5 in md5s.items() if (got := found.get(n) or file_digest(raw / n, "md5")) != md5]
    if bad:
        unofficial("; ".join(bad), bool(cfg.allow_unofficial))
    return bool(md5s) and not bad


def _source_key(names: list[str], found: dict[str, str]) -> str:
    """The .gz files' md5s, as a folder name: the same files, the same folder."""
    md5s = " ".join(f"{n}:{found[f'{n}.gz']}" for n in names)
    return "source-" + hashlib.sha256(md5s.encode()).hexdigest()[:16]


def _unpack_gz(names: list[str], src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        try:
            with gzip.open(src / f"{name}.gz", "rb") as fin:
                # parallel jobs may unpack at once; a crash never leaves a half-written file behind
                replace_atomic(dst / name, lambda tmp: _copy(fin, tmp))
        except (OSError, EOFError) as e:
            raise DataError(f"corrupt data: cannot decompress {src / name}.gz ({e})") from e


def _copy(fin, path: Path) -> None:
    with open(path, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def locate_idx(cfg: Idx) -> tuple[Path, dict[str, str], bool]:
    """The folder that holds the uncompressed files (unpacking or downloading as needed), their SHA-256s, and
    whether they are the official files (by data.sha256, or by data.gz_md5 where the config lists no SHA-256s)."""
    root = Path(cfg.root).expanduser().resolve()
    raw = root / cfg.folder
    names = [cfg.files[r] for r in ROLES]
    official = dict(cfg.sha256 or {})

    if all((raw / n).is_file() for n in names):
        digests = _digests(cfg, raw)
        return raw, digests, bool(official) and digests == official
    if all((raw / f"{n}.gz").is_file() for n in names):
        # The data root is input only (often a shared, read-only folder): unpack into the cache, in a folder of this
        # source's own (keyed by the .gz files' md5s), so that two sources of one dataset never share a folder.
        # (<cache>/<name>/source-<key>/<folder>: the same layout under it as in the data root, torchvision's)
        found = {f"{n}.gz": file_digest(raw / f"{n}.gz", "md5") for n in names}  # each file read once
        cache = Path(cfg.cache_dir).expanduser().resolve() / cfg.name / _source_key(names, found) / cfg.folder
        official_gz = _check_gz(cfg, raw, found)
        if official_gz and official and all((cache / n).is_file() for n in names):
            digests = _digests(cfg, cache)
            if digests == official:
                return cache, digests, True
        _unpack_gz(names, raw, cache)  # first use, a stale cache, or unofficial files (never trusted from cache)
        digests = _digests(cfg, cache)
        return cache, digests, digests == official if official else official_gz
    missing = [n for n in names if not (raw / f"{n}.gz").is_file()]
    if cfg.download and cfg.torchvision:
        import torchvision.datasets

        source = getattr(torchvision.datasets, cfg.torchvision)
        # The network first: a failed attempt must not leave empty folders behind.
        if reachable(source.mirrors[0]) and writable_folder(raw):
            source(str(root), train=True, download=True)  # torchvision unpacks into <root>/<class>/raw
            digests = _digests(cfg, raw)
            return raw, digests, bool(official) and digests == official
    raise _missing_error(cfg, raw, missing)


def _header(path: Path) -> list[int] | None:
    """An IDX file's sizes from its header (a .gz beside it is read as a stream), or None when it is absent or
    unreadable: load_idx then says what is wrong."""
    for opener, file in ((open, path), (gzip.open, path.with_name(f"{path.name}.gz"))):
        if file.is_file():
            try:
                with opener(file, "rb") as f:
                    head = f.read(4)
                    if len(head) < 4 or head[:3] != b"\x00\x00\x08":
                        return None
                    dims = f.read(4 * head[3])
                return [int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4)]
            except (OSError, EOFError):
                return None
    return None


def idx_sizes(cfg: Idx) -> tuple[int, int, int] | None:
    """(training samples, test samples, input features) from the files' headers, before anything is loaded."""
    raw = Path(cfg.root).expanduser() / cfg.folder
    heads = {role: _header(raw / cfg.files[role]) for role in ("train_images", "test_images")}
    if any(h is None or len(h) < 1 for h in heads.values()):
        return None
    train, test = heads["train_images"], heads["test_images"]
    return train[0], test[0], int(np.prod(train[1:]))


def read_idx(path: Path) -> np.ndarray:
    """One IDX file: a 4-byte magic (0x08 = uint8, then the number of dimensions), big-endian sizes, the data."""
    data = path.read_bytes()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise DataError(f"cannot parse {path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"cannot parse {path}: the header says {dims}, the file holds {body.size} values")
    return body.reshape(dims)


def _read(cfg: Idx, raw: Path, digests: dict[str, str]) -> dict[str, torch.Tensor]:
    """Decode once; later runs load the decoded tensors from the cache, keyed by the files' SHA-256s."""
    key = hashlib.sha256("".join(digests[n] for n in sorted(digests)).encode()).hexdigest()[:16]
    cache = Path(cfg.cache_dir).expanduser().resolve() / cfg.name / f"tensors-{key}.pt"
    if cache.is_file():
        try:
            blob = torch.load(cache, map_location="cpu", weights_only=True)
            if blob["digest"] == _tensor_digest(blob["tensors"]):
                return blob["tensors"]
        except Exception:  # unreadable or stale: rebuild below
            pass
    tensors = {}
    for split in ("train", "test"):
        x, y = read_idx(raw / cfg.files[f"{split}_images"]), read_idx(raw / cfg.files[f"{split}_labels"])
        if len(x) != len(y):
            raise DataError(f"cannot parse {raw}: {len(x)} {split} images but {len(y)} labels")
        tensors[f"{split}_x"] = torch.from_numpy(x.reshape(len(x), -1).copy())
        tensors[f"{split}_y"] = torch.from_numpy(y.astype(np.int64))
    if writable_folder(cache.parent):
        replace_atomic(cache, lambda tmp: torch.save({"digest": _tensor_digest(tensors), "tensors": tensors}, tmp))
    return tensors


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].contiguous().numpy().tobytes())
    return h.hexdigest()


def load_idx(cfg: Idx, device: torch.device) -> Dataset:
    raw, digests, official = locate_idx(cfg)
    reference = dict(cfg.sha256 or {})
    if reference and not official:
        bad = [f"{n} has SHA-256 {d[:12]}..." for n, d in digests.items() if d != reference.get(n)]
        unofficial(f"{raw}: {'; '.join(bad)} (not the official files)", bool(cfg.allow_unofficial))
    elif not (reference or cfg.gz_md5):
        log.info("%s: the config lists no official checksums, so its runs record data_official=false", cfg.name)
    t = _read(cfg, raw, digests)
    splits = {
        name: Split(x=t[f"{name}_x"].to(device=device, dtype=torch.float32).div_(255.0), y=t[f"{name}_y"].to(device))
        for name in ("train", "test")
    }
    if cfg.normalize:
        # Statistics measured on the training split only, then applied to both.
        mean, std = splits["train"].x.mean(), splits["train"].x.std()
        for s in splits.values():
            s.x.sub_(mean).div_(std)
    source = Path(cfg.root).expanduser().resolve() / cfg.folder
    return Dataset(cfg.name, splits["train"], splits["test"], source=str(source), official=official)
