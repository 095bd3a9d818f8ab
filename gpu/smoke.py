"""Run bnrepro on a bare GPU machine: receive the data, check every GPU path in minutes, then the full protocols.

On the GPU machine, from the checkout (python3 there is 3.12 with torch; no hydra, no network):

    python3 gpu/smoke.py --receive          # each call that carries a part of .gpu_data/: check it, keep it
    python3 gpu/smoke.py --budget-s 600     # wheels, data, smoke stage, then the full runs until the budget ends

Each stage runs under a timeout that ends it with SIGTERM, so its runs still write their metrics (status
'interrupted'). What comes back ($OUT, or --out): every run's run.json, metrics.parquet and config, and summary.md,
a one-screen table of every stage. Checked on a CPU with `--device cpu --tiny` (tests/test_gpu_runner.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import sha256  # noqa: E402  (standard library only, like this script)

ROOT = Path(__file__).resolve().parents[1]
PIECES = ROOT / ".gpu_data"
DATA = Path("/tmp/bnrepro-data")  # the rebuilt CIFAR-10 (cifar-10-batches-py/), kept while the machine is warm
SITE = Path("/tmp/site")
KEEP = ("run.json", "metrics.parquet", "config_resolved.yaml")

# The smoke stage: every GPU path at a few steps. (label, overrides, steps)
SMOKE = [
    ("vgg-fp32", ["experiment=cifar_bn", "model.norm=batch"], 30),
    ("vgg-bf16-channels_last", ["experiment=cifar_bn", "model.norm=batch", "trainer.amp=bf16",
                                "trainer.channels_last=true"], 30),
    ("vgg-noisy_bn", ["experiment=cifar_bn", "model.norm=noisy_batch"], 30),
    ("vgg-tf32-compile", ["experiment=cifar_bn", "model.norm=batch", "trainer.tf32=true", "trainer.compile=default"],
     100),
    ("landscape-vmap", ["experiment=landscape_full", "landscape.batched=true"], 10),
    ("landscape-loop", ["experiment=landscape_full", "landscape.batched=false"], 10),
    ("ics", ["experiment=ics_full", "trainer.ics_every=5"], 10),
    ("lp_norm", ["experiment=lp_norm_full", "model.norm=l1"], 20),
    ("mlp-cuda", ["experiment=mnist_bn", "device=cuda"], 200),
]
# The full protocols, in the order they matter; each a multirun whose jobs share the GPU. First Santurkar Fig 1 at 3
# seeds in TF32 and the same grid in bf16 with channels_last: the precision comparison over seeds (docs/gpu.md).
FIG1 = ["experiment=cifar_bn", "model.norm=none,batch,noisy_batch", "optim.lr=0.1,0.5", "seed=0,1,2"]
FULL = [
    ("cifar_bn-tf32", [*FIG1, "trainer.tf32=true"]),
    ("cifar_bn-bf16-channels_last", [*FIG1, "trainer.tf32=true", "trainer.amp=bf16", "trainer.channels_last=true"]),
    ("landscape_full", ["experiment=landscape_full", "trainer.landscape_every=10", "trainer.tf32=true"]),
    ("ics_full", ["experiment=ics_full", "trainer.ics_every=10", "trainer.tf32=true"]),
    ("lp_norm_full", ["experiment=lp_norm_full", "trainer.tf32=true"]),
]


def receive(pieces: Path = PIECES, data: Path = DATA) -> list[str]:
    """Check the pieces this call carried against SHA256SUMS and keep them under data/pieces; once every piece is
    there, rebuild the files and check each against FILES.sha256. Returns what is still missing."""
    sums = dict(reversed(line.split("  ", 1)) for line in (pieces / "SHA256SUMS").read_text().split("\n") if line)
    kept = data / "pieces"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(pieces / "SHA256SUMS", kept / "SHA256SUMS")
    shutil.copy(pieces / "FILES.sha256", kept / "FILES.sha256")
    for name, digest in sums.items():
        here = pieces / name
        if here.is_file():
            if sha256(here) != digest:
                raise SystemExit(f"smoke: error: {name} arrived corrupt (SHA-256 differs); carry it again")
            (kept / Path(name).name).write_bytes(here.read_bytes())
    missing = [n for n, d in sums.items() if not (kept / Path(n).name).is_file()]
    if missing:
        return missing
    for line in (kept / "FILES.sha256").read_text().split("\n"):
        if not line:
            continue
        digest, name = line.split("  ", 1)
        target = rebuilt(data, name)
        target.parent.mkdir(exist_ok=True)
        parts = sorted(kept.glob(f"{name}.[0-9][0-9][0-9]"))
        with open(target, "wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        if sha256(target) != digest:
            raise SystemExit(f"smoke: error: {name} rebuilt from {len(parts)} pieces fails its SHA-256")
    return []


def rebuilt(data: Path, name: str) -> Path:
    """Where a carried file lands: an archive beside the pieces (data.archive), CIFAR's batches in their folder."""
    return data / name if ".tar" in name else data / "cifar-10-batches-py" / name


def data_overrides(root: Path) -> list[str]:
    archives = sorted(root.glob("*.tar*"))
    return [f"data.root={root}", "data.allow_unofficial=true"] + ([f"data.archive={archives[0]}"] if archives else [])


def install_wheels() -> dict:
    """The environment the runs get: the carried wheels on PYTHONPATH when hydra or pydantic is missing, and src/."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    paths = [str(ROOT / "src")]
    try:
        import hydra  # noqa: F401
        import pydantic  # noqa: F401
    except ImportError:
        wheels = sorted((ROOT / ".whl").glob("*.whl"))
        if not wheels:
            raise SystemExit("smoke: error: hydra or pydantic is missing and .whl/ holds no wheels "
                             "(python gpu/prepare.py)") from None
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(SITE), *map(str, wheels)], check=True)
        paths.append(str(SITE))
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def start_stage(args, env, label: str, overrides: list[str], multirun: bool) -> dict:
    """One train.py call in its own process group, so that a timeout can SIGTERM all of its jobs."""
    folder = args.work / label
    data = [] if any(o.startswith("data.root=") for o in overrides) else args.data_overrides
    cmd = [sys.executable, str(ROOT / "experiments" / "train.py"), *(["-m"] if multirun else []), *overrides,
           f"device={args.device}", "logger=none", *data]
    cmd += ([f"hydra.sweep.dir={folder}", "hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.jobs}"]
            if multirun else [f"hydra.run.dir={folder}"])
    log = open(args.work / f"{label}.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return {"label": label, "folder": folder, "proc": proc, "log": log, "t0": time.perf_counter()}


def finish_stages(started: list[dict], deadline: float) -> list[dict]:
    """Wait for stages that run side by side; at `deadline` SIGTERM the rest (the runs checkpoint and write their
    metrics), and SIGKILL whatever still runs a minute later."""
    for s in started:
        try:
            s["rc"] = s["proc"].wait(timeout=max(deadline - time.perf_counter(), 1))
        except subprocess.TimeoutExpired:
            s["timeout"] = True
    late = [s for s in started if s.get("timeout")]
    # The runs first: a multirun's launcher process, signalled with them, exits at once, and its pool then kills
    # the workers that are still writing their last checkpoint and metrics (seen on the GPU: a run left 'running').
    workers = [pid for s in late for pid in group_members(s["proc"].pid) if pid != s["proc"].pid]
    for pid in workers:
        signal_quietly(pid, signal.SIGTERM)
    t_stop = time.perf_counter() + 60
    while any(Path(f"/proc/{pid}").exists() and not zombie(pid) for pid in workers) and time.perf_counter() < t_stop:
        time.sleep(0.5)
    for s in late:
        signal_quietly(s["proc"].pid, signal.SIGTERM, group=True)
        try:
            rc = s["proc"].wait(timeout=max(t_stop - time.perf_counter(), 5))
        except subprocess.TimeoutExpired:
            signal_quietly(s["proc"].pid, signal.SIGKILL, group=True)
            rc = s["proc"].wait()
        s["rc"] = f"{rc} (timeout)"
    for s in started:
        s["log"].close()
    return [{"label": s["label"], "rc": s["rc"], "seconds": round(time.perf_counter() - s["t0"], 1),
             "runs": summarise(s["folder"]), "log": s["log"].name} for s in started]


def group_members(pgid: int) -> list[int]:
    """The processes of a process group (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the command name: state, ppid, pgrp
            pids.append(int(stat.parent.name))
    return pids


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def signal_quietly(pid: int, sig: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except ProcessLookupError:
        pass


def run_stage(args, env, label: str, overrides: list[str], timeout: float, multirun: bool) -> dict:
    """One stage on its own, under a timeout."""
    [stage] = finish_stages([start_stage(args, env, label, overrides, multirun)], time.perf_counter() + timeout)
    return stage


def summarise(folder: Path) -> list[dict]:
    rows = []
    for info_file in sorted(folder.rglob("run.json")):
        info = json.loads(info_file.read_text())
        steps, loop = info.get("steps_done") or 0, (info.get("timings") or {}).get("train_loop_s")
        rows.append({"run": str(info_file.parent.relative_to(folder)) or ".", "status": info.get("status"),
                     "steps": steps, "ms_per_step": round(1000 * loop / steps, 2) if loop and steps else None,
                     "test_acc": info.get("final_test_acc", info.get("last_test_acc")),
                     "wall_s": info.get("wall_time_s"), "device": info.get("device"), "amp": info.get("amp"),
                     "tf32": info.get("tf32"), "channels_last": info.get("channels_last")})
    return rows


def table(stages: list[dict]) -> str:
    lines = ["| stage | rc | s | run | status | steps | ms/step | test acc |", "|---|---|---|---|---|---|---|---|"]
    for s in stages:
        for i, r in enumerate(s["runs"] or [{}]):
            head = [s["label"], str(s["rc"]), str(s["seconds"])] if i == 0 else ["", "", ""]
            acc = r.get("test_acc")
            lines.append("| " + " | ".join(head + [r.get("run", "(no run.json)"), str(r.get("status", "")),
                                                   str(r.get("steps", "")), str(r.get("ms_per_step", "")),
                                                   f"{acc:.4f}" if isinstance(acc, float) else ""]) + " |")
    return "\n".join(lines)


def collect(work: Path, out: Path, stages: list[dict]) -> None:
    """The small files of every run (no checkpoints, no weights), one tar.gz per full stage and one for the smoke
    stage: what comes back from the GPU machine is a few flat files, not a tree."""
    groups: dict[str, list[str]] = {}
    for s in stages:
        groups.setdefault("smoke" if s["label"].startswith("smoke-") else s["label"], []).append(s["label"])
    for group, labels in groups.items():
        with tarfile.open(out / f"runs-{group}.tar.gz", "w:gz") as tar:
            for label in labels:
                for path in sorted((work / label).rglob("*")) + [work / f"{label}.log"]:
                    if path.is_file() and (path.name in KEEP or path.suffix == ".log"):
                        tar.add(path, arcname=str(path.relative_to(work)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--receive", action="store_true", help="only check and keep the data pieces this call carried")
    p.add_argument("--device", default="cuda")
    p.add_argument("--budget-s", type=float, default=600, help="wall time for everything; stages end before it")
    p.add_argument("--smoke-only", action="store_true")
    p.add_argument("--tiny", action="store_true", help="a few steps everywhere (checking this script on a CPU)")
    # Fig 1's 18 runs all at once: one process per run cannot overlap its kernels with another's otherwise
    p.add_argument("--jobs", type=int, default=18, help="jobs side by side on the one GPU in each full stage")
    p.add_argument("--together", type=int, default=1, help="full stages that start with the smoke stage")
    p.add_argument("--smoke-s", type=float, default=180, help="the smoke stage's time limit")
    p.add_argument("--data-root", type=Path,
                   help="a folder with cifar-10-batches-py/ or a CIFAR tarball (default: the rebuilt pieces)")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "runs" / "gpu")))
    args = p.parse_args()
    t_end = time.perf_counter() + args.budget_s
    if args.receive:
        missing = receive()
        print(f"smoke: data {'complete: ' + str(DATA) if not missing else f'still missing {len(missing)} pieces'}")
        return
    root = args.data_root
    if root is None:
        missing = receive() if (PIECES / "SHA256SUMS").is_file() else ["(no .gpu_data/)"]
        if missing:
            raise SystemExit(f"smoke: error: CIFAR-10 incomplete, missing {missing[:3]}...; carry the rest of "
                             ".gpu_data/ or give --data-root")
        root = DATA
    args.data_overrides = data_overrides(root)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work = Path("/tmp/bnrepro-gpu-runs") if args.out != ROOT / "runs" / "gpu" else args.out
    if args.work != args.out:
        shutil.rmtree(args.work, ignore_errors=True)  # runs of an earlier call on a warm machine are not this one's
    args.work.mkdir(parents=True, exist_ok=True)
    env = install_wheels()
    tiny = ["trainer.max_steps=3", "trainer.eval_every=3", "model.width=0.125"] if args.tiny else []
    # GPU time is the scarce thing: the smoke stage's processes and the first full stages (Fig 1's grid, and the
    # bf16/channels_last run to compare with its float32 run) all start at once and share the GPU.
    mnist = PIECES if (PIECES / "MNIST" / "raw").is_dir() else args.data_root
    smoke = [start_stage(args, env, f"smoke-{label}", overrides + [f"trainer.max_steps={steps}"] + tiny
                         + ([f"data.root={mnist}"] if label == "mlp-cuda" else []), False)
             for label, overrides, steps in SMOKE if not (label == "mlp-cuda" and (args.device != "cuda" or not mnist))]
    smoke.append(start_stage(args, env, "smoke-parallel", ["experiment=cifar_bn", "model.norm=none,batch",
                                                            "trainer.max_steps=20", *tiny], True))
    full = [] if args.smoke_only else FULL
    first = [start_stage(args, env, label, overrides + tiny, True) for label, overrides in full[:args.together]]
    stages = finish_stages(smoke, min(time.perf_counter() + args.smoke_s, t_end - 90))
    print(table(stages), flush=True)
    stages += finish_stages(first, t_end - 90)  # SIGTERM, the runs' last writes and the copy need the 90 s
    for label, overrides in full[args.together:]:
        left = t_end - time.perf_counter() - 90
        if left < 60:
            stages.append({"label": label, "rc": "not started (budget)", "seconds": 0, "runs": []})
            continue
        stages.append(run_stage(args, env, label, overrides + tiny, left, multirun=True))
    summary = "# GPU runs\n\n" + table(stages) + "\n"
    (args.out / "summary.md").write_text(summary)
    (args.out / "stages.json").write_text(json.dumps(stages, indent=1, default=str))
    collect(args.work, args.out, stages)
    print(summary)


if __name__ == "__main__":
    main()
