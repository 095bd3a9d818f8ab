"""The GPU runner (gpu/), checked on the CPU: data in pieces, and the stages."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_{name}", ROOT / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.unit
def test_pieces_round_trip_and_checks(tmp_path):
    prepare, smoke = load("prepare"), load("smoke")
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("data_batch_1", 2500), ("batches.meta", 100), ("test_batch", 1000)):
        (src / name).write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    pieces = tmp_path / "pieces"
    prepare.pieces(src, pieces, 1000)
    parts = sorted(p.name for p in pieces.glob("part-*"))
    assert len(parts) == 4 and all(sum(f.stat().st_size for f in (pieces / p).iterdir()) <= 1000 for p in parts)

    # The parts arrive one call at a time; the data is rebuilt once all are there.
    carried = tmp_path / "carried"
    data = tmp_path / "data"
    for i, part in enumerate(parts):
        shutil_copy_tree(pieces, carried, keep=part)
        missing = smoke.receive(carried, data)
        assert bool(missing) == (i < len(parts) - 1)
    for name in ("data_batch_1", "batches.meta", "test_batch"):
        assert (data / "cifar-10-batches-py" / name).read_bytes() == (src / name).read_bytes()
    assert smoke.data_overrides(data) == [f"data.root={data}", "data.allow_unofficial=true"]

    # A piece damaged on the way is refused, by name.
    shutil_copy_tree(pieces, carried, keep=parts[0])
    victim = next((carried / parts[0]).iterdir())
    victim.write_bytes(b"x" + victim.read_bytes()[1:])
    with pytest.raises(SystemExit, match=victim.name):
        smoke.receive(carried, tmp_path / "data2")


@pytest.mark.unit
def test_an_archive_travels_whole_and_becomes_data_archive(tmp_path):
    """The full-size copy travels as its tarball, cut in pieces: rebuilt beside the pieces, it is data.archive."""
    prepare, smoke = load("prepare"), load("smoke")
    tarball = tmp_path / "cifar-lossy.tar.xz"
    tarball.write_bytes(np.random.default_rng(1).integers(0, 256, 2500, dtype=np.uint8).tobytes())
    pieces = tmp_path / "pieces"
    prepare.pieces(tarball, pieces, 1000)
    parts = sorted(p.name for p in pieces.glob("part-*"))
    assert len(parts) == 3
    data = tmp_path / "data"
    for part in parts:
        shutil_copy_tree(pieces, tmp_path / "carried", keep=part)
        missing = smoke.receive(tmp_path / "carried", data)
    assert not missing and (data / tarball.name).read_bytes() == tarball.read_bytes()
    assert smoke.data_overrides(data)[-1] == f"data.archive={data / tarball.name}"


def shutil_copy_tree(pieces, carried, keep: str) -> None:
    """What one call carries: the sums, and one part."""
    import shutil

    shutil.rmtree(carried, ignore_errors=True)
    carried.mkdir()
    for name in ("SHA256SUMS", "FILES.sha256"):
        shutil.copy(pieces / name, carried / name)
    shutil.copytree(pieces / keep, carried / keep)


@pytest.mark.e2e
@pytest.mark.skipif(not (SHARED / "cifar-10-batches-py").is_dir(), reason="needs ../shared/datasets")
def test_the_whole_plan_on_cpu(tmp_path):
    """The one call a GPU lease gets, at 3 steps on the CPU: the smoke stage, Fig 1 at 3 seeds in TF32 and in bf16,
    then the landscape, ICS and lp stages; every run ends completed, and what comes back fits the device's 8 files."""
    import subprocess

    out = tmp_path / "out"
    subprocess.run([sys.executable, str(ROOT / "gpu" / "smoke.py"), "--device", "cpu", "--tiny", "--jobs", "2",
                    "--budget-s", "3000", "--data-root", str(SHARED), "--out", str(out)], check=True, cwd=ROOT,
                   timeout=3600)
    stages = json.loads((out / "stages.json").read_text())
    labels = [s["label"] for s in stages]
    assert labels[-6:] == ["smoke-parallel", "cifar_bn-tf32", "cifar_bn-bf16-channels_last", "landscape_full",
                           "ics_full", "lp_norm_full"]
    runs = {s["label"]: s["runs"] for s in stages}
    assert len(runs["cifar_bn-tf32"]) == len(runs["cifar_bn-bf16-channels_last"]) == 18  # 3 norms x 2 lrs x 3 seeds
    assert {r["status"] for rs in runs.values() for r in rs} == {"completed"}
    import tarfile

    with tarfile.open(out / "runs-smoke.tar.gz") as tar:  # what comes back: flat files, the runs packed
        names = tar.getnames()
    assert "smoke-vgg-fp32/metrics.parquet" in names and "smoke-parallel.log" in names
    back = sorted(p.name for p in out.iterdir())
    assert len(back) <= 8 and {"stages.json", "summary.md", "runs-cifar_bn-tf32.tar.gz"} <= set(back)


@pytest.mark.e2e
@pytest.mark.parametrize("multirun", [False, True])
def test_stage_timeout_ends_runs_with_their_metrics(tmp_path, mnist_data, multirun):
    """A stage past its time gets SIGTERM: its runs stop at a step boundary as 'interrupted', metrics written; in a
    multirun the workers are signalled before the launcher, which would otherwise take them down mid-write."""
    import argparse

    smoke = load("smoke")
    args = argparse.Namespace(work=tmp_path, device="cpu", jobs=1, data_overrides=mnist_data["overrides"])
    env = smoke.install_wheels()
    # 90 s: room for a loaded machine to start Hydra, torch and the data (25 s was not, beside the smoke-stage test)
    stage = smoke.run_stage(args, env, "long", ["experiment=mnist_bn", "trainer.max_steps=1000000"], 90,
                            multirun=multirun)
    assert "timeout" in str(stage["rc"])
    [run] = stage["runs"]
    assert run["status"] == "interrupted" and run["steps"] > 0
    assert len(list((tmp_path / "long").rglob("metrics.parquet"))) == 1
