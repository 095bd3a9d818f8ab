"""CIFAR-10 through torchvision's CIFAR10 class, as uint8 tensors on the training device.

Official files load silently. Files that parse but fail torchvision's md5s (the offline copies: a
pixel-exact subset, and a full-size copy decoded from JPEG) are refused unless
data.allow_unofficial=true; then they load with a loud warning and every run they feed records
data_official: false. `data.archive` names a tarball that holds cifar-10-batches-py (such as the
full-size lossy copy); it is extracted once into data.cache_dir, never beside the data.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bnrepro import DataError
from bnrepro.data.core import Dataset, Split, file_digest, unofficial
from bnrepro.io_utils import reachable, writable_folder
from bnrepro.paths import ENV_VAR

if TYPE_CHECKING:
    from bnrepro.config.schema import Cifar10

BASE = "cifar-10-batches-py"
# The official archive's size (torchvision's CIFAR10 holds its name, address and md5): what a user fetches by hand.
ARCHIVE_BYTES = 170_498_071


def official_md5s() -> dict[str, str]:
    from torchvision.datasets import CIFAR10

    return dict(CIFAR10.train_list + CIFAR10.test_list + [(CIFAR10.meta["filename"], CIFAR10.meta["md5"])])


def _archive(cfg: Cifar10, root: Path) -> Path:
    """data.archive: absolute, or relative to the data root."""
    archive = Path(cfg.archive).expanduser()
    return archive if archive.is_absolute() else root / archive


def _extracted(archive: Path, cache_dir: Path) -> Path:
    """Where `archive` is unpacked in the cache (keyed by its SHA-256): the folder above cifar-10-batches-py, complete
    once it holds `.complete`."""
    return cache_dir / "cifar10" / file_digest(archive, "sha256")[:16]


def _extract(archive: Path, cache_dir: Path) -> Path:
    """Unpack `archive` once into the cache; return the folder above cifar-10-batches-py."""
    target = _extracted(archive, cache_dir)
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One job extracts; parallel jobs wait for it and then find the folder complete.
    with open(target.with_name(f"{target.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _extract_locked(archive, target)


def _extract_locked(archive: Path, target: Path) -> Path:
    if not (target / ".complete").is_file():
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # what a killed extraction leaves behind
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"corrupt data: cannot extract {archive} ({e})") from e
        found = sorted(p.parent for p in tmp.rglob(BASE) if p.is_dir())
        if not found:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"{archive} holds no {BASE}/ folder")
        (found[0] / ".complete").touch()  # the folder appears complete, atomically, or not at all
        try:
            os.replace(found[0], target)
        except OSError:  # another job finished extracting first: use theirs
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def locate_cifar10(cfg: Cifar10) -> tuple[Path, bool]:
    """The folder above cifar-10-batches-py, and whether every file in it is the official one."""
    root = Path(cfg.root).expanduser().resolve()
    allow = bool(cfg.allow_unofficial)
    if cfg.archive:
        archive = _archive(cfg, root)
        if not archive.is_file():
            raise DataError(f"data.archive={cfg.archive!r}: no file at {archive}")
        base_root = _extract(archive, Path(cfg.cache_dir).expanduser().resolve())
    else:
        base_root = root
        if not (root / BASE).is_dir():
            from torchvision.datasets import CIFAR10

            if cfg.download and reachable(CIFAR10.url) and writable_folder(root):
                CIFAR10(str(root), train=True, download=True)
            else:
                raise DataError(
                    f"CIFAR-10 not found: no {BASE}/ in {root}, and it cannot be downloaded (no network, or "
                    f"data.download=false). Fetch {CIFAR10.filename} ({ARCHIVE_BYTES:,} bytes, md5 "
                    f"{CIFAR10.tgz_md5}) from {CIFAR10.url} and unpack it there (tar -xzf {CIFAR10.filename} -C "
                    f"{root}), or pass data.archive=<its path>; or point data.root or the {ENV_VAR} environment "
                    f"variable at the folder that holds {BASE}/."
                )
    folder = base_root / BASE
    md5s = official_md5s()
    missing = [name for name in md5s if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}")
    bad = [name for name, md5 in md5s.items() if file_digest(folder / name, "md5") != md5]
    if bad:
        unofficial(f"{folder}: {', '.join(bad)} fail torchvision's md5 check", allow)
    return base_root, not bad


def cifar10_sizes(cfg: Cifar10) -> tuple[int, int, int] | None:
    """(training samples, test samples, channels) from the batches' labels, before anything is loaded; None while
    the folder does not exist yet (an archive not yet extracted, a download to come)."""
    root = Path(cfg.root).expanduser().resolve()
    if cfg.archive:
        archive = _archive(cfg, root)
        if not archive.is_file():
            return None
        root = _extracted(archive, Path(cfg.cache_dir).expanduser().resolve())
        if not (root / ".complete").is_file():
            return None
    from torchvision.datasets import CIFAR10

    counts, channels = {}, None
    for split, files in (("train", CIFAR10.train_list), ("test", CIFAR10.test_list)):
        counts[split] = 0
        for name, _ in files:
            try:
                with open(root / BASE / name, "rb") as f:
                    batch = pickle.load(f, encoding="latin1")
                counts[split] += len(batch["labels"])
                channels = batch["data"].shape[1] // (32 * 32)
            except Exception:  # absent or damaged: load_cifar10 says which and how
                return None
    return counts["train"], counts["test"], channels


def _dataset_class():
    from torchvision.datasets import CIFAR10

    class Checked(CIFAR10):
        """torchvision's reader, minus the md5 checks that locate_cifar10 has already made (or was told to skip)."""

        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return Checked


def load_cifar10(cfg: Cifar10, device: torch.device) -> Dataset:
    base_root, official = locate_cifar10(cfg)
    reader = _dataset_class()
    splits = {}
    try:
        for name, train in (("train", True), ("test", False)):
            ds = reader(str(base_root), train=train)
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # uint8 [N, 3, 32, 32]
            splits[name] = Split(x=x.to(device), y=torch.tensor(ds.targets, dtype=torch.int64, device=device))
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, OSError) as e:
        raise DataError(f"corrupt data: cannot parse the batches in {base_root / BASE} "
                        f"({type(e).__name__}: {e})") from e
    if cfg.normalize:
        # Per-channel statistics measured on the training split, applied to whole batches on the device.
        x = splits["train"].x.double().div_(255.0)
        mean = x.mean(dim=(0, 2, 3)).float().view(1, -1, 1, 1)
        std = x.std(dim=(0, 2, 3)).float().view(1, -1, 1, 1)
        del x

        def transform(batch: torch.Tensor) -> torch.Tensor:
            return (batch.float().div_(255.0) - mean) / std
    else:
        def transform(batch: torch.Tensor) -> torch.Tensor:
            return batch.float().div_(255.0)
    for split in splits.values():
        split.transform = transform
    return Dataset("cifar10", splits["train"], splits["test"], source=str(base_root / BASE), official=official)
