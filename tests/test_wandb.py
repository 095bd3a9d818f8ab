"""W&B: offline by default, one run per job holding the logged keys; unreachable online mode falls back."""

import json
import signal
import struct
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.e2e


def wandb_records(run_file: Path):
    """Decode W&B's offline run file (LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, buf = run_file.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    records = []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            records.append(buf + chunk)
    for raw in records:
        r = pb.Record()
        r.ParseFromString(raw)
        yield r


def wandb_history(run_file: Path):
    """The history rows of an offline run file."""
    return [{"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
            for r in wandb_records(run_file) if r.WhichOneof("record_type") == "history"]


def _run_files(run_dir: Path):
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


def test_offline_run_holds_the_logged_keys(tmp_path, mnist_data):
    res = run_cli("experiment=mnist_bn", "trainer.max_steps=100", "trainer.eval_every=50", "trainer.probe_every=25",
                  "logger.log_every=50", f"hydra.run.dir={tmp_path}", *mnist_data["overrides"])
    assert res.returncode == 0, res.stderr[-2000:]
    files = _run_files(tmp_path)
    assert len(files) == 1  # one run per job
    rows = wandb_history(files[0])
    steps = [r["_step"] for r in rows]
    assert steps == [0, 50, 100]
    last = rows[-1]
    for key in ("train/loss", "train/acc", "test/acc", "test/loss", "act/layer3/pooled/p15",
                "act/layer3/unit/p85", "act/layer1/pooled/p50"):
        assert key in last, key
    assert 0 <= last["test/acc"] <= 1 and last["act/layer3/pooled/p15"] <= last["act/layer3/pooled/p85"]
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "completed"
    # W&B groups by experiment, then by variant and lr (one seed band each); the final values are the summary
    records = list(wandb_records(files[0]))
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.run_group == "mnist_bn" and run.job_type == "batch lr=0.01"
    assert {"mnist_bn", "batch", "lr=0.01"} <= set(run.tags)
    summary = {i.key: json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "summary"
               for i in r.summary.update}
    assert summary["status"] == "completed" and summary["final_test_acc"] == info["final_test_acc"]
    assert summary["steps_done"] == 100


def test_unreachable_online_mode_falls_back_to_offline_quickly(tmp_path, mnist_data):
    t = time.perf_counter()
    # Port 9 on loopback refuses at once: the same answer as a machine without network.
    res = run_cli("experiment=mnist_bn", "trainer.max_steps=20", "logger.mode=online", f"hydra.run.dir={tmp_path}",
                  *mnist_data["overrides"], env_extra={"WANDB_MODE": None, "WANDB_BASE_URL": "http://127.0.0.1:9"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "logging offline instead" in res.stdout + res.stderr
    assert len(_run_files(tmp_path)) == 1
    assert time.perf_counter() - t < 60


def test_logger_none_writes_no_wandb_run(tmp_path, mnist_data):
    res = run_cli("experiment=mnist_bn", "trainer.max_steps=20", "logger=none", f"hydra.run.dir={tmp_path}",
                  *mnist_data["overrides"])
    assert res.returncode == 0 and not (tmp_path / "wandb").exists()


def test_step_probe_metrics_reach_wandb(tmp_path):
    """ICS and landscape values measured between W&B calls go out with the next call; a regression task logs no
    accuracy."""
    res = run_cli("experiment=dln", "model.depth=6", "trainer.max_steps=40", "trainer.eval_every=20",
                  "trainer.ics_every=10", "trainer.landscape_every=10", "ics.layers=[3,5]", "logger.log_every=20",
                  f"hydra.run.dir={tmp_path}")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = wandb_history(_run_files(tmp_path)[0])
    assert [r["_step"] for r in rows] == [0, 20, 40]
    for key in ("train/loss", "test/loss", "ics/layer3/cos", "ics/layer5/l2", "landscape/beta",
                "landscape/gpred_max"):
        assert key in rows[-1], key
    assert "train/acc" not in rows[-1] and "ics/layer3/cos" not in rows[0]


def test_a_sweeps_runs_sit_side_by_side_named_by_their_overrides(tmp_path, mnist_data):
    """`wandb beta leet <sweep>/wandb` browses them together (one wandb/ folder for the sweep)."""
    res = run_cli("-m", "experiment=mnist_bn", "model.norm=none,batch", "trainer.max_steps=20",
                  f"hydra.sweep.dir={tmp_path}", *mnist_data["overrides"])
    assert res.returncode == 0, res.stderr[-2000:]
    files = _run_files(tmp_path)
    assert len(files) == 2
    names = {r.run.display_name for f in files for r in wandb_records(f) if r.WhichOneof("record_type") == "run"}
    assert names == {"model.norm=none,trainer.max_steps=20", "model.norm=batch,trainer.max_steps=20"}


def test_a_resumed_offline_run_continues_one_wandb_run(tmp_path, mnist_data):
    """Killed after its checkpoint at step 200 (its W&B folder then holds rows past it), the run resumes: one
    offline-run folder is left, holding the history of an uninterrupted run, row for row."""
    from tests.test_resume import SHORT, start_and_stop

    overrides = [*[o for o in SHORT if o != "logger=none"], "logger.log_every=50", *mnist_data["overrides"]]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_cli(*overrides, f"hydra.run.dir={whole}").returncode == 0
    start_and_stop(killed, overrides, 250, signal.SIGKILL)
    assert len(_run_files(killed)) == 1
    res = run_cli(*overrides, f"hydra.run.dir={killed}")
    assert res.returncode == 0 and "resumed from step 200" in res.stdout + res.stderr, res.stderr[-2000:]
    files = _run_files(killed)
    assert len(files) == 1

    def rows(file):
        return [{k: v for k, v in r.items() if k not in ("_runtime", "_timestamp")} for r in wandb_history(file)]

    expected = rows(_run_files(whole)[0])
    assert [r["_step"] for r in expected] == list(range(0, 401, 50))
    assert rows(files[0]) == expected


def test_a_run_holds_the_top_level_keys_and_the_metric_definitions(tmp_path, mnist_data):
    """What a researcher browsing a sweep groups and filters by is at the top of the config; W&B knows which
    metrics to maximise and minimise while a run goes on, and plots each against the training step; the per-η
    landscape values have a section of their own."""
    res = run_cli("experiment=mnist_bn", "trainer.max_steps=300", "trainer.landscape_every=100",
                  f"hydra.run.dir={tmp_path}", *mnist_data["overrides"])
    assert res.returncode == 0, res.stderr[-2000:]
    records = list(wandb_records(_run_files(tmp_path)[0]))
    config = {i.key: json.loads(i.value_json) for r in records if r.WhichOneof("record_type") in ("run", "config")
              for i in (r.run.config.update if r.WhichOneof("record_type") == "run" else r.config.update)}
    assert config["variant"] == "batch" and config["lr"] == 0.01 and config["seed"] == 0
    assert config["experiment"] == "mnist_bn" and config["model"]["norm"] == "batch"
    defined = {r.metric.name or r.metric.glob_name: r.metric for r in records
               if r.WhichOneof("record_type") == "metric"}
    assert defined["*"].step_metric == "step"
    for name, best in (("train/acc", "max"), ("test/acc", "max"), ("train/loss", "min"), ("test/loss", "min")):
        assert getattr(defined[name].summary, best), name
    keys = set().union(*wandb_history(_run_files(tmp_path)[0]))
    assert "landscape/beta" in keys and not [k for k in keys if k.startswith("landscape/eta/")]
    assert any(k.startswith("landscape_eta/") for k in keys)


EXPERIMENTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "configs" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiments_workspace_plots_only_what_its_runs_log(tmp_path, mnist_data, cifar_data, experiment):
    """The workspace is built offline from the experiment's config; a real offline run of that experiment, shrunk,
    logs every metric its panels plot."""
    from bnrepro.config import compose
    from bnrepro.config.check import check
    from bnrepro.wandb_workspace import metrics, sections, workspace

    c = check(compose(f"experiment={experiment}", "logger=wandb"))
    assert workspace(c, "entity", "project", lr=0.1)._to_model().model_dump_json()  # builds, and serialises
    wanted = metrics(sections(c))
    t = c.trainer
    shrink = [f"trainer.{k}=1" for k in ("probe_every", "landscape_every", "ics_every") if getattr(t, k)]
    data = cifar_data["overrides"] + ["model.width=0.0625", "trainer.batch_size=16", "probe.batch_size=16"] \
        if c.model.name == "vgg" else mnist_data["overrides"] if c.data.format == "idx" else []
    if c.data.format == "idx" and c.data.name != "mnist":  # fashion_bn: not here; its panels are MNIST's
        data = ["data=mnist", *data]
    res = run_cli(f"experiment={experiment}", "trainer.max_steps=2", "trainer.eval_every=1", "logger.log_every=1",
                  *shrink, *data, f"hydra.run.dir={tmp_path}")
    assert res.returncode == 0, res.stderr[-2000:]
    logged = set().union(*wandb_history(_run_files(tmp_path)[0]))
    assert wanted <= logged, sorted(wanted - logged)
