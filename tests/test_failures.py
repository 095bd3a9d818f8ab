"""Runs that fail safely: one process per run folder, sweep workers that end with their launcher, a damaged
checkpoint, a full disk, read-only outputs, a second Ctrl-C: each ends in one line and a documented exit code, with
nothing lost and nothing half-written."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bnrepro import EXIT_INTERRUPTED, EXIT_REFUSED, EXIT_UNWRITABLE
from tests.conftest import ROOT, make_cfg, run_cli, small_overrides, start_cli


def long_run(mnist_data, run_dir: Path, steps: int = 200000) -> list[str]:
    """An MLP run long enough to be caught in the middle (no evaluation: every line is a step)."""
    return ["experiment=mnist_bn", f"trainer.max_steps={steps}", "trainer.eval_every=0", "trainer.probe_every=0",
            "trainer.progress_every=200", "trainer.checkpoint_every=500", "logger=none", *mnist_data["overrides"],
            f"hydra.run.dir={run_dir}"]


def wait_for(path: Path, text: str, proc: subprocess.Popen | None = None, limit_s: float = 1200) -> None:
    """Until `text` is in the file (generous: a loaded machine is slow, and the test does not measure speed)."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if path.is_file() and text in path.read_text():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before {text!r}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def problems(out) -> list[str]:
    """What a command said went wrong, on either stream (a run's errors go through its log, which Hydra prints)."""
    return [line for line in (out.stdout + out.stderr).splitlines()
            if line.strip() and " - " not in line or "][ERROR] - " in line]


# --- one process per run folder


@pytest.mark.unit
def test_a_folder_lock_is_held_once_and_a_dead_holders_lock_is_taken_over(tmp_path):
    from bnrepro.runfolder import LOCK, FolderBusy, FolderLock, holder

    with FolderLock(tmp_path):
        assert holder(tmp_path) == os.getpid()
        with pytest.raises(FolderBusy, match=f"in use by pid {os.getpid()}"):
            FolderLock(tmp_path).acquire()  # another open file: flock refuses it even within one process
    assert holder(tmp_path) is None
    (tmp_path / LOCK).write_text("999999\n")  # what a process killed with SIGKILL leaves: its pid, and no lock
    with FolderLock(tmp_path):
        assert holder(tmp_path) == os.getpid()


@pytest.mark.e2e
def test_a_second_process_on_the_same_run_folder_stops_at_once_and_writes_nothing(tmp_path, mnist_data):
    run = tmp_path / "run"
    first = start_cli(*long_run(mnist_data, run))
    try:
        wait_for(run / "train.log", "step 200/", first)
        before = {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
        second = run_cli(*long_run(mnist_data, run))
        assert second.returncode == EXIT_REFUSED
        lines = error_lines(second.stderr)
        assert len(lines) == 1 and f"in use by pid {first.pid}" in lines[0], second.stderr
        after = {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
        assert set(after) - set(before) <= {"metrics.parquet", "checkpoint.pt", "checkpoint.prev.pt"}  # the first's
        assert all(after[n] == t for n, t in before.items() if n.startswith(".hydra") or n == "config_resolved.yaml")
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=600)
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


# --- sweep workers end with their launcher


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").is_file() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.e2e
def test_sigkill_of_a_parallel_launcher_ends_its_workers(tmp_path, mnist_data):
    sweep = tmp_path / "sweep"
    args = [a for a in long_run(mnist_data, tmp_path / "unused") if not a.startswith("hydra.run.dir")]
    launcher = start_cli("-m", *args, "seed=0,1", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2",
                     f"hydra.sweep.dir={sweep}")
    folders = {}
    try:
        deadline = time.time() + 1200
        while len(folders) < 2 and time.time() < deadline:  # each job's folder is named by its overrides
            folders = {seed: f for seed in (0, 1) for f in sweep.glob(f"*seed={seed},*")}
            time.sleep(0.2)
        for folder in folders.values():
            wait_for(folder / "train.log", "step 200/", launcher)
        workers = [p for p in children(launcher.pid) if alive(p)]
        assert workers
        launcher.kill()
        launcher.wait()
        deadline = time.time() + 120  # a step and a checkpoint on a loaded machine; then the worker ends
        while any(alive(p) for p in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(alive(p) for p in workers), [p for p in workers if alive(p)]
    finally:
        for p in children(launcher.pid):
            os.kill(p, signal.SIGKILL)
    for folder in folders.values():
        info = json.loads((folder / "run.json").read_text())
        assert info["status"] == "interrupted" and (folder / "checkpoint.pt").is_file()


# --- a damaged checkpoint


@pytest.mark.unit
def test_a_damaged_checkpoint_falls_back_to_the_previous_one_or_names_the_choices(tmp_path):
    from bnrepro import checkpoint

    path = tmp_path / checkpoint.FILE
    for step in (10, 20):
        torch.save({"version": checkpoint.VERSION, "step": step}, path.with_name(f"{step}.pt"))
    os.replace(tmp_path / "10.pt", tmp_path / checkpoint.PREVIOUS)
    os.replace(tmp_path / "20.pt", path)
    assert checkpoint.load(path)["step"] == 20
    path.write_bytes(path.read_bytes()[:50])  # truncated, as by a full disk or a copy cut short
    state = checkpoint.load(path)
    assert state["step"] == 10 and state["loaded_from"] == checkpoint.PREVIOUS  # what the resume line names
    (tmp_path / checkpoint.PREVIOUS).write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.load(path)
    assert str(e.value) == (f"damaged checkpoint: {path} cannot be read, nor the previous one, {checkpoint.PREVIOUS}: "
                            f"force=true starts this run again from step 0 in its folder")
    assert checkpoint.load(tmp_path / "empty" / checkpoint.FILE) is None  # no checkpoint yet: a new run


@pytest.mark.e2e
def test_a_truncated_checkpoint_is_one_line_naming_it_and_force_true(tmp_path, mnist_data):
    run = tmp_path / "run"
    proc = start_cli(*long_run(mnist_data, run))
    wait_for(run / "train.log", "step 1200/", proc)  # two checkpoints: the last one and the one before
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=600) == EXIT_INTERRUPTED
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run / name).write_bytes((run / name).read_bytes()[:1000])
    out = run_cli(*long_run(mnist_data, run))
    assert out.returncode == EXIT_REFUSED
    lines = problems(out)
    assert len(lines) == 1 and f"damaged checkpoint: {run / 'checkpoint.pt'}" in lines[0] and "force=true" in lines[0]
    assert "checkpoint.prev.pt" in lines[0] and len(lines[0]) < 400  # both named, no torch internals
    assert "Traceback" not in out.stdout + out.stderr
    assert not list(run.glob("*.tmp"))


# --- a full disk


@pytest.mark.integration
def test_a_full_disk_marks_the_run_failed_and_raises_what_it_is(tmp_path, mnist_data, monkeypatch):
    from bnrepro.metrics import MetricStore
    from bnrepro.run import train

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(MetricStore, "write", full)
    with pytest.raises(OSError) as e:
        train(make_cfg(*small_overrides(mnist_data, steps=30)), tmp_path)
    assert e.value.errno == errno.ENOSPC
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "failed" and "No space left" in info["error"]


@pytest.mark.unit
def test_run_json_is_rewritten_in_place_when_nothing_new_fits(tmp_path, monkeypatch):
    from bnrepro import runinfo

    path = tmp_path / "run.json"
    runinfo.write_json(path, {"status": "running", "pad": "x" * 200})

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runinfo, "replace_atomic", full)
    runinfo.write_json(path, {"status": "failed"})
    assert json.loads(path.read_text()) == {"status": "failed"}


def small_tmpfs(folder: Path, size: str = "1m") -> bool:
    folder.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.mark.e2e
def test_a_full_filesystem_is_one_line_and_exit_3(tmp_path, mnist_data):
    disk = tmp_path / "disk"
    if not small_tmpfs(disk):
        pytest.skip("cannot mount a tmpfs here (the integration test covers a full disk through a patched writer)")
    try:
        run = disk / "run"
        out = run_cli(*long_run(mnist_data, run, steps=3000), "trainer.checkpoint_every=200")
        assert out.returncode == EXIT_UNWRITABLE, out.stderr
        lines = problems(out)
        assert len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in out.stderr
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "failed" and "No space left" in info["error"]
        assert not list(run.glob("*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# --- read-only outputs


@pytest.mark.e2e
def test_figures_and_report_refuse_a_read_only_results_folder_before_drawing(tmp_path):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "dln", results / "dln")
    before = {p: p.stat().st_mtime_ns for p in (results / "dln").iterdir()}
    (results / "dln").chmod(0o555)
    results.chmod(0o555)
    try:
        for script, expect in (("figures.py", "figures: cannot write"), ("report.py", "report: cannot write")):
            out = run_cli("--results", str(results), *(["dln"] if script == "figures.py" else []), script=script)
            assert out.returncode == EXIT_REFUSED
            lines = error_lines(out.stderr)
            assert len(lines) == 1 and lines[0].startswith(expect) and "is not writable" in lines[0], out.stderr
    finally:
        results.chmod(0o755)
        (results / "dln").chmod(0o755)
    assert {p: p.stat().st_mtime_ns for p in (results / "dln").iterdir()} == before


# --- a second Ctrl-C


@pytest.mark.e2e
def test_a_second_ctrl_c_stops_at_once_with_one_line_and_the_run_resumes(tmp_path, mnist_data):
    run = tmp_path / "run"
    proc = start_cli(*long_run(mnist_data, run, steps=4000))
    wait_for(run / "train.log", "step 600/", proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == EXIT_INTERRUPTED and "Traceback" not in err
    lines = [line for line in error_lines(err) if "WARNING" not in line]
    assert len(lines) <= 1 and all("second Ctrl-C" in line for line in lines), err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    again = run_cli(*long_run(mnist_data, run, steps=4000))
    assert again.returncode == 0, again.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed_from_step"] >= 500 and not list(run.glob("*.tmp"))


# --- input that used to be accepted silently


@pytest.mark.unit
def test_the_step_log_grows_with_the_steps_done():
    from bnrepro.record import StepLog

    log = StepLog(10**9, torch.device("cpu"), classification=True)
    assert len(log.losses) == StepLog.FIRST  # not 12 GB up front
    for i in range(StepLog.FIRST + 10):
        log.append(torch.tensor(float(i)), torch.zeros(1, 3), torch.zeros(1, dtype=torch.int64))
    log.reduce()
    assert log.recorded == StepLog.FIRST + 10 and float(log.losses[StepLog.FIRST + 9]) == StepLog.FIRST + 9
    assert len(log.losses) == 2 * StepLog.FIRST and log.means(0, 4, 1)["acc"] == 1.0
    small = StepLog(100, torch.device("cpu"), classification=False)
    assert len(small.losses) == 100


@pytest.mark.e2e
def test_a_misspelt_claim_metric_is_refused_by_make_report(tmp_path):
    claims = (ROOT / "configs" / "claims.yaml").read_text().replace("metric: test/acc\n", "metric: test/accc\n", 1)
    (tmp_path / "claims.yaml").write_text(claims)
    out = run_cli("--claims", str(tmp_path / "claims.yaml"), "--results", str(ROOT / "results"), script="report.py",
                  cwd=tmp_path)
    assert out.returncode == EXIT_REFUSED
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and "metric 'test/accc' is recorded by no stored result (did you mean test/acc?)" in lines[0]


@pytest.mark.e2e
def test_importing_the_figures_and_the_report_leaves_the_backend_alone():
    """A notebook's inline backend survives `import bnrepro.report` (which the explore notebook does)."""
    code = ("import matplotlib; matplotlib.use('svg'); import bnrepro.report, bnrepro.figures.style, "
            "bnrepro.figures.mnist; print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


# --- one stream for errors


@pytest.mark.e2e
def test_warnings_and_errors_go_to_stderr_and_progress_to_stdout(tmp_path):
    """An error the run finds (missing data, inside the run) and a warning (divergence) are on stderr only; progress
    lines are on stdout only."""
    missing = run_cli("experiment=mnist_bn", "trainer.max_steps=10", "logger=none", f"data.root={tmp_path / 'nothing'}",
                      "data.download=false", f"hydra.run.dir={tmp_path / 'missing'}")
    assert missing.returncode == EXIT_REFUSED
    assert "[ERROR]" in missing.stderr and "[ERROR]" not in missing.stdout
    diverging = run_cli("experiment=mnist_bn", "trainer.max_steps=30", "optim.lr=1e4", "logger=none",
                        f"hydra.run.dir={tmp_path / 'diverging'}")
    assert diverging.returncode == 0
    assert "diverged at step" in diverging.stderr and "[WARNING]" not in diverging.stdout
    assert " step 10/30 " in diverging.stdout and "[INFO]" not in diverging.stderr


@pytest.mark.unit
def test_a_progress_line_comes_every_30_seconds_whatever_the_step_cadence(monkeypatch):
    """trainer.max_steps=1e9 puts 5% at 5e7 steps: the wall clock then brings the line."""
    from bnrepro import loop as loop_module

    clock = [0.0]
    monkeypatch.setattr(loop_module.time, "monotonic", lambda: clock[0])
    lines = []

    class Every:
        steps, log, eval, probe, wandb, progress, ics, landscape, checkpoint, deltas = 10**9, 10, 0, 0, 0, 5 * 10**7, \
            0, 0, 0, False

        @staticmethod
        def due(every, step):
            return bool(every) and step % every == 0

    class Record:
        diverged_at = None

        def train(self, step):
            return 1.0

        def send(self, step):
            pass

        def progress(self, step, window):
            lines.append(step)

    class Measure:
        init = probe = None

    loop = loop_module.Loop.__new__(loop_module.Loop)
    loop.every, loop.record, loop.measure, loop.device = Every, Record(), Measure(), torch.device("cpu")
    loop.threshold, loop.seconds, loop.last_progress = None, {"log_s": 0.0}, 0.0
    for step in range(10, 101, 10):
        clock[0] = step  # one second of wall time per step
        loop.between_steps(step)
    assert lines == [30, 60, 90]


# --- damaged result files


def _one_line(out) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == EXIT_REFUSED and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    return lines[0]


@pytest.mark.e2e
@pytest.mark.parametrize("damage", ["truncated metrics.parquet", "runs.csv without a column"])
def test_a_damaged_results_folder_is_one_line_from_figures_and_report(tmp_path, damage):
    import shutil

    import pandas as pd

    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "mnist_init", results / "mnist_init")
    folder = results / "mnist_init"
    if damage.startswith("truncated"):
        path = folder / "metrics.parquet"
        path.write_bytes(path.read_bytes()[:500])
    else:
        path = folder / "runs.csv"
        pd.read_csv(path).drop(columns="seed").to_csv(path, index=False)
    for script, args in (("figures.py", ["mnist_init", "--results", str(results)]),
                         ("report.py", ["--results", str(results)])):
        line = _one_line(run_cli(*args, script=script))
        assert str(path) in line and "make mnist-init" in line, (script, line)
    assert not (results / "REPORT.md").exists()


@pytest.mark.e2e
def test_damaged_run_files_are_one_line_from_collect(tmp_path, mnist_data):
    run = tmp_path / "runs" / "one"
    assert run_cli("experiment=mnist_bn", "trainer.max_steps=10", "logger=none", f"hydra.run.dir={run}",
                   *mnist_data["overrides"]).returncode == 0
    for name in ("run.json", "metrics.parquet"):
        saved = (run / name).read_bytes()
        (run / name).write_bytes(saved[:40])
        line = _one_line(run_cli(str(tmp_path / "runs"), "--out", str(tmp_path / "out"), script="collect.py"))
        assert str(run / name) in line and "force=true" in line, line
        (run / name).write_bytes(saved)
    assert not (tmp_path / "out").exists()
    assert run_cli(str(tmp_path / "runs"), "--out", str(tmp_path / "out"), script="collect.py").returncode == 0


# --- values nobody listed (tests/test_values.py draws every key's; these are the ones users met, end to end)


@pytest.mark.e2e
@pytest.mark.parametrize("value,said", [
    ("seed=99999999999999999999", "seed=99999999999999999999 must be <= 9223372036854775807"),
    ("model.hidden=[100000,100000,100000]", "parameters need about"),
    ("optim.lr=1e-300", "optim.lr=1e-300 is below float32's smallest normal number"),
    ("model.norm=layer model.hidden=[102,102,102] model.affine=false trainer.max_steps=5", None),  # runs
])
def test_values_users_met_are_refused_in_one_line_before_any_folder(tmp_path, mnist_data, value, said):
    run = tmp_path / "run"
    out = run_cli("experiment=mnist_bn", "trainer.max_steps=5", "logger=none", *value.split(), f"hydra.run.dir={run}",
                  *mnist_data["overrides"])
    if said is None:
        assert out.returncode == 0, out.stderr[-2000:]
        return
    line = _one_line(out)
    assert said in line, line
    assert not run.exists()


@pytest.mark.e2e
def test_a_learning_rate_too_small_to_move_a_weight_stops_the_run_in_one_line(tmp_path, mnist_data):
    """1e-30 is a float32 number, but every step rounds to nothing beside the weights: the run stops after its
    first step (exit 2), recorded as failed, instead of ending 'completed' with its initial weights."""
    run = tmp_path / "run"
    out = run_cli("experiment=mnist_bn", "trainer.max_steps=30", "logger=none", "optim.lr=1e-30",
                  f"hydra.run.dir={run}", *mnist_data["overrides"])
    assert out.returncode == EXIT_REFUSED and "the first step changed no weight" in out.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
