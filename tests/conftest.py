from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")  # the figures write files; no test opens a window

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SHARED = ROOT.parent / "shared" / "datasets"
TIERS = ("unit", "integration", "e2e")  # pyproject.toml says what each holds; `make test` runs the first two


def pytest_collection_modifyitems(config, items):
    """Every test in exactly one tier, so that `make test` neither skips a new test nor runs a CLI test by accident."""
    wrong = [f"{item.nodeid} ({', '.join(t for t in TIERS if item.get_closest_marker(t)) or 'none'})"
             for item in items if sum(item.get_closest_marker(t) is not None for t in TIERS) != 1]
    if wrong:
        raise pytest.UsageError(f"tests need exactly one tier marker of {TIERS}: {'; '.join(wrong[:5])}")


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """MNIST's IDX format: magic (0x0801 labels / 0x0803 images), big-endian dims, then uint8 data."""
    magic = 0x0801 if array.ndim == 1 else 0x0803
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_synthetic_mnist(root: Path, n_train: int = 1200, n_test: int = 400, seed: int = 0) -> Path:
    """Small, learnable stand-in: each class lights up its own 4x4 patch, plus noise."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n)
        x = (rng.random((n, 28, 28)) < 0.1) * rng.integers(0, 256, (n, 28, 28))
        for i, c in enumerate(y):
            r, col = 4 + 4 * (c // 5) * 2, 2 + 5 * (c % 5)
            x[i, r : r + 4, col : col + 4] = 255
        write_idx_gz(raw / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx_gz(raw / f"{prefix}-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    return write_synthetic_mnist(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def mnist_data(tmp_path_factory, synthetic_root) -> dict:
    """The real MNIST from ../shared/datasets when present, otherwise small IDX files written here.

    Returns data-config overrides and whether the data is the real thing."""
    if (SHARED / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file():
        return {"overrides": [f"data.root={SHARED}"], "real": True}
    return {"overrides": [f"data.root={synthetic_root}", "data.allow_unofficial=true"], "real": False}


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "cache"  # shared by the session: decoded once
    monkeypatch.setenv("BNREPRO_CACHE", str(cache))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("BNREPRO_DATA", raising=False)


def make_cfg(*overrides: str):
    """configs/train.yaml composed with these overrides, as experiments/train.py composes it (a DictConfig)."""
    from bnrepro.config import compose

    return compose(*overrides)


def make_config(*overrides: str):
    """The same, as the schema's objects with every rule checked: what a run reads (plan.config)."""
    from bnrepro.config.check import check

    return check(make_cfg(*overrides))


def small_overrides(data: dict, steps: int = 200) -> list[str]:
    """The real experiment config, shrunk: few steps, frequent evaluation and probes, no W&B."""
    return ["experiment=mnist_bn", f"trainer.max_steps={steps}", "trainer.eval_every=50",
            "trainer.probe_every=20", "logger=none", *data["overrides"]]


def command(script: str, *args: str) -> list[str]:
    """python experiments/<script> with these arguments."""
    return [sys.executable, str(ROOT / "experiments" / script), *args]


def _env(extra: dict | None) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}  # unbuffered: a test may wait for a line
    return {k: v for k, v in env.items() if v is not None}  # None removes a variable


def run_cli(*args: str, script: str = "train.py", cwd: Path = ROOT, timeout: int = 1800,
            env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """One of the commands users type (experiments/train.py unless `script` names another), to its end."""
    return subprocess.run(command(script, *args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=_env(env_extra))


def start_cli(*args: str, script: str = "train.py", stderr=subprocess.PIPE) -> subprocess.Popen:
    """The same, in the background (stderr=subprocess.STDOUT: one stream, in the order it was written)."""
    return subprocess.Popen(command(script, *args), cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env=_env(None))


def write_synthetic_cifar(root: Path, per_batch: int = 40, test: int = 40, seed: int = 0) -> Path:
    """cifar-10-batches-py in the official pickle layout (uint8 rows of 3072, labels), small and learnable."""
    import pickle

    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        labels = rng.integers(0, 10, n)
        data = rng.integers(0, 60, (n, 3, 32, 32), dtype=np.uint8)
        for i, c in enumerate(labels):  # each class brightens one channel in its own band of rows
            data[i, c % 3, 3 * c : 3 * c + 3, :] = 250
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels.tolist(), "data": data.reshape(n, -1)}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch,
                     "num_vis": 3072}, f, protocol=2)
    return root


@pytest.fixture(scope="session")
def cifar_data(tmp_path_factory) -> dict:
    """The pixel-exact CIFAR-10 subset from ../shared/datasets when present, else small pickles written here.
    Neither is the official data, so both need data.allow_unofficial=true."""
    if (SHARED / "cifar-10-batches-py").is_dir():
        root, real = SHARED, True
    else:
        root, real = write_synthetic_cifar(tmp_path_factory.mktemp("cifar")), False
    return {"overrides": [f"data.root={root}", "data.allow_unofficial=true"], "real": real}


@pytest.fixture
def git_repo(tmp_path):
    """An empty git repository in tmp_path; git(*args) runs git there, commit() commits everything."""
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    def commit() -> None:
        git("add", "-A")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")

    git("init", "-q")
    git.commit = commit
    return git


def sgd_side_by_side(a, b, batches, **kw) -> None:
    """Model a trained by torch.optim.SGD, model b (a copy) by FlatSGD, with the same options, on the same batches
    (x, y); then every parameter must be equal, bit for bit."""
    import torch
    import torch.nn.functional as F

    from bnrepro.optim import FlatSGD

    opt_a, opt_b = torch.optim.SGD(a.parameters(), **kw), FlatSGD(b.parameters(), **kw)
    for x, y in batches:
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def job(sweep: Path, *settings: str) -> Path:
    """The one job folder of a sweep whose name (its overrides, comma-separated) holds every `key=value` given."""
    found = [p for p in Path(sweep).iterdir() if p.is_dir() and set(settings) <= set(p.name.split(","))]
    assert len(found) == 1, f"{settings} matches {[p.name for p in found]} in {sweep}"
    return found[0]
