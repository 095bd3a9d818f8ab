"""Get a checkout ready for a bare GPU machine (no hydra, no network, files in pieces of at most ~60 MB).

    python gpu/prepare.py            # .whl/ (the pure-Python packages it lacks) and .gpu_data/ (CIFAR-10 in pieces)

On the GPU machine, gpu/smoke.py installs the wheels into /tmp/site and rebuilds the data from the pieces, checking
each piece and each rebuilt file by its SHA-256. docs/gpu.md says how to carry them there.
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# What the GPU image lacks, at the versions pyproject.toml pins (hydra's parallel launcher included; W&B is not
# needed there: the logger is none or offline).
WHEELS = ["hydra-core==1.3.8", "omegaconf==2.3.1", "hydra-joblib-launcher==1.2.0", "pydantic==2.14.4",
          "pydantic-core==2.50.5", "annotated-types==0.8.0", "typing-inspection==0.4.5", "typing-extensions==4.16.0"]
SDIST_ONLY = ["antlr4-python3-runtime==4.9.3"]  # pure Python, published as a source archive: built into a wheel here
PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux2014_x86_64"]


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def wheels(out: Path) -> None:
    out.mkdir(exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "download", "-q", "--no-deps", "--only-binary=:all:", *PLATFORM, "-d", str(out), *WHEELS],
                   check=True)
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(out), *SDIST_ONLY], check=True)
    print(f"wheels -> {out}: {', '.join(sorted(p.name for p in out.glob('*.whl')))}")


def pieces(source: Path, out: Path, size: int) -> None:
    """`source` (a file, or every file of a folder) cut into pieces of at most `size` bytes, one subfolder per carry
    (out/part-K/), with SHA256SUMS for the pieces and FILES.sha256 for the whole files."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    part, used = 0, 0
    sums, files = [], []
    paths = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file()
                                                       and not p.name.startswith("."))
    for path in paths:
        files.append(f"{sha256(path)}  {path.name}")
        with open(path, "rb") as f:
            k = 0
            while True:
                if used >= size:
                    part, used = part + 1, 0
                chunk = f.read(size - used)
                if not chunk:
                    break
                name = f"part-{part}/{path.name}.{k:03d}"
                (out / name).parent.mkdir(exist_ok=True)
                (out / name).write_bytes(chunk)
                sums.append(f"{hashlib.sha256(chunk).hexdigest()}  {name}")
                used, k = used + len(chunk), k + 1
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    (out / "FILES.sha256").write_text("\n".join(files) + "\n")
    parts = sorted(out.glob("part-*"))
    print(f"data -> {out}: {len(files)} files in {len(sums)} pieces, {len(parts)} parts of <= {size / 1e6:g} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archive", default="cifar10-LOSSY-approx/cifar-10-python-LOSSY-jpeg75-approx.tar.xz",
                   help="data.archive to carry (relative to the data root); '' carries none")
    p.add_argument("--piece-mb", type=int, default=45,
                   help="the largest part (the tree itself is ~20 MB of the 64 MiB a call carries)")
    p.add_argument("--no-wheels", action="store_true")
    args = p.parse_args()
    if not args.no_wheels:
        wheels(ROOT / ".whl")
    if args.archive:
        from bnrepro.paths import default_data_root

        # The archive itself travels (xz: 142 MB, against 184 MB of unpacked batches): one call fewer, and the
        # GPU machine unpacks it once, in the seconds xz takes, exactly as data.archive does here.
        archive = Path(args.archive) if Path(args.archive).is_absolute() else Path(default_data_root()) / args.archive
        if not archive.is_file():
            raise SystemExit(f"prepare: error: no archive at {archive} (--archive, or the data root)")
        pieces(archive, ROOT / ".gpu_data", args.piece_mb * 1_000_000)
        # MNIST's four .gz files (11.6 MB) travel whole with the last part, for the MLP's CUDA check.
        mnist = Path(default_data_root()) / "MNIST" / "raw"
        if mnist.is_dir():
            shutil.copytree(mnist, ROOT / ".gpu_data" / "MNIST" / "raw",
                            ignore=lambda _, names: [n for n in names if not n.endswith(".gz")])


if __name__ == "__main__":
    main()
