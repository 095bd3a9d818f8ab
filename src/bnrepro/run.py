"""One run: its folder and files, its status, the device, and the objects the loop is built from.

run.json exists from the start (status `running`) and ends `completed`, `diverged`, `interrupted` or `failed`. The
loop checkpoints every trainer.checkpoint_every steps and when a signal comes (Ctrl-C, SIGTERM, SIGUSR1/2); running
the same command again resumes from the checkpoint, and a finished run is skipped unless force=true. One process at a
time: the run holds its folder's lock (runfolder.py) from before its first read to after its last write."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import traceback
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from bnrepro import ConfigError, checkpoint
from bnrepro.augment import random_crop_flip
from bnrepro.config.check import check_against_data
from bnrepro.config.plan import Plan, resolve
from bnrepro.config.stored import config_text, same_computation
from bnrepro.data import BatchSampler, generator, load_dataset
from bnrepro.data import sizes as data_sizes
from bnrepro.evaluation import LOSSES, Measurements, StepProbes
from bnrepro.io_utils import save_torch
from bnrepro.logger import NullLogger, build_logger
from bnrepro.loop import Interrupted, Loop
from bnrepro.metrics import MetricStore
from bnrepro.models import build_model
from bnrepro.optim import build_optimizer, current_lr, schedule
from bnrepro.record import Record, StepLog
from bnrepro.runfolder import FolderLock, remove_leftovers
from bnrepro.runinfo import FINISHED, environment, now, read_json, save_code_diff, write_json
from bnrepro.signals import Stop, end_with_launcher, signals_stop

log = logging.getLogger("bnrepro")
# run.json's final values that W&B also gets as the run's summary
SUMMARY_KEYS = ("status", "steps_done", "diverged_at_step", "final_test_acc", "best_test_acc", "wall_time_s")


def run_name() -> str | None:
    """Hydra's name for the job (its overrides), when Hydra launched it."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().job.override_dirname or None
    except (ImportError, ValueError):
        return None


def sweep_dir() -> Path | None:
    """The sweep folder, when Hydra launched this job as part of a sweep."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        return Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    except (ImportError, ValueError):
        return None


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Run one job, or resume or skip it; return its run.json content. A bad config value raises ConfigError
    before anything is written, and a folder another process holds raises FolderBusy; any later failure raises
    after writing what the run has."""
    plan = resolve(cfg, run_name())
    check_against_data(plan.config, data_sizes(plan.config.data))
    run_dir = Path(run_dir)
    end_with_launcher()  # a sweep worker stops with its launcher, however the launcher ends
    with FolderLock(run_dir):
        remove_leftovers(run_dir)
        try:
            return _train(plan, run_dir)
        finally:
            remove_leftovers(run_dir)


def _train(plan: Plan, run_dir: Path) -> dict:
    config = config_text(plan.config)
    previous = read_json(run_dir / "run.json")
    if previous and previous.get("status") in FINISHED and not plan.config.force:
        stored = run_dir / "config_resolved.yaml"
        if not stored.is_file() or not same_computation(plan.config, OmegaConf.load(stored)):
            raise ConfigError(f"{run_dir} holds a finished run of another config: force=true trains this one there, "
                              "fresh=true in a new folder")
        log.info("[%s] already %s in %s: skipped (force=true trains it again)", plan.name, previous["status"], run_dir)
        return previous
    state = None if plan.config.force else checkpoint.load(run_dir / checkpoint.FILE)
    if state is not None and not same_computation(plan.config, state["config"]):
        raise ConfigError(f"{run_dir} holds a checkpoint of another config: force=true starts this run again there, "
                          "fresh=true starts it in a new folder")
    t_start = time.perf_counter()
    (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(dataclasses.asdict(plan.config)))
    save_code_diff(run_dir)
    info: dict = {"status": "running", "started_at": now(), "run_dir": str(run_dir), **environment()}
    if state is not None:
        info["resumed_from_step"] = state["step"]
    write_json(run_dir / "run.json", info)
    store, logger, loop, stop = MetricStore(plan.identity), NullLogger(), None, Stop()
    stop.abort = lambda: write_json(run_dir / "run.json", {
        **info, "status": "interrupted", "error": "interrupted: a second Ctrl-C", "finished_at": now()})
    raised = False  # an exception is on its way out: a failed last write must not replace it
    try:
        with signals_stop(stop):
            loop = build(plan, run_dir, config, store, stop, info)
            logger = loop.record.logger
            start = 0
            if state is not None:
                start = checkpoint.restore(state, loop)
                log.info("[%s] resumed from step %d (%s)", plan.name, start, run_dir / state["loaded_from"])
            info["status"] = loop.run(start)
    except Interrupted as e:
        info.update(status="interrupted", error=f"interrupted: {e}")
        log.warning("[%s] interrupted (%s): metrics and a checkpoint at step %d are in %s; the same command resumes "
                    "from there", plan.name, e.signal, e.step, run_dir)
        raised = True
        raise
    except KeyboardInterrupt:
        info.update(status="interrupted", error="interrupted")
        raised = True
        raise
    except Exception as e:
        info.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        raised = True
        raise
    finally:
        finished = info["status"] in FINISHED
        if loop is not None:
            info.update(loop.record.summary(loop.steps_done, finished), timings=timings(loop))
        info.update(finished_at=now(), wall_time_s=round(time.perf_counter() - t_start, 3))
        unwritten = None  # a full or read-only disk: run.json still says so, where it can be written
        try:
            if finished:
                # On the CPU: a GPU run's weights then load anywhere (and VGG-16's are not kept as 59 MB of CUDA
                # tensors).
                save_torch({k: v.cpu() for k, v in loop.model.state_dict().items()}, run_dir / "model_final.pt")
            store.write(run_dir / "metrics.parquet")
            if finished:
                checkpoint.remove(run_dir / checkpoint.FILE)
        except OSError as e:
            unwritten, finished = e, False
            info.update(status="failed", error=f"{type(e).__name__}: {e}")
        try:
            write_json(run_dir / "run.json", info)
            logger.finish(exit_code=0 if finished else 1, summary={k: info.get(k) for k in SUMMARY_KEYS})
        except OSError as e:
            unwritten = unwritten or e
        if finished:
            log.info("[%s] %s: %s", plan.name, info["status"], run_dir)
        elif stop.chain is not None:  # e.g. submitit on a cluster: requeue the job, which then resumes here
            stop.chain(stop.signum, None)
        if unwritten is not None and not raised:
            raise unwritten  # training itself went well: the write that failed is the error to report
    return info


def build(plan: Plan, run_dir: Path, config: str, store: MetricStore, stop: Stop, info: dict) -> Loop:
    """The data, model, optimiser, probes, logger and record of a run, and the loop over them."""
    c, t = plan.config, plan.config.trainer
    if plan.threads:
        torch.set_num_threads(plan.threads)
    if plan.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = plan.tf32
    info.update(device=str(plan.device), threads=torch.get_num_threads(), fused_step=plan.fused,
                amp=t.amp, tf32=plan.tf32, channels_last=t.channels_last, compile=t.compile)
    data = load_dataset(c.data, plan.device)
    info.update(data=c.data.name, data_source=data.source, data_official=data.official)
    check_against_data(c, (len(data.train), len(data.test), data.in_features))
    streams = {}
    if getattr(c.data, "augment", False):  # CIFAR-10 alone has data.augment
        # Its own RNG stream: switching augmentation on never changes the data order.
        g_aug = streams["augment"] = generator(c.seed, "augment", plan.device)
        data.train.augment = lambda x: random_crop_flip(x, g_aug)

    torch.manual_seed(c.seed)  # the model's initial weights, and nothing else, come from the global stream
    model = build_model(c.model).to(plan.device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
        data.train.memory_format = data.test.memory_format = torch.channels_last
    opt = build_optimizer(c.optim, model)
    sampler = BatchSampler(data.train, t.batch_size, generator(c.seed, "data-order"))
    streams["data-order"] = sampler.gen
    loss_fn = LOSSES[data.task]
    measure = Measurements(plan, model, data.test, data.task, data.train, loss_fn, lr=lambda: current_lr(opt))
    info["probe_unit"] = c.probe.unit if plan.every.probe else None
    # One W&B run per run folder: a resumed run continues it. The jobs of a sweep keep their W&B runs side by side in
    # <sweep folder>/wandb/, where `wandb leet` browses them together, each named by its overrides.
    wandb_id = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    logger = build_logger(c.logger, sweep_dir() or run_dir, dataclasses.asdict(c), plan.name, wandb_id,
                          dataclasses.asdict(plan.identity))
    record = Record(store, logger, StepLog(plan.every.steps, plan.device, data.task == "classification"),
                    t.batch_size, plan.name, plan.every.steps)

    def save(step: int) -> None:
        checkpoint.save(run_dir / checkpoint.FILE, step, config, loop)
        store.write(run_dir / "metrics.parquet")  # on the same cadence: a killed run keeps both

    loop = Loop(plan, model, opt, sampler, loss_fn, measure, StepProbes(plan, model, loss_fn), record,
                checkpoint.generators(model, streams), save, stop, schedule(c.optim, opt))
    return loop


def timings(loop: Loop) -> dict[str, float]:
    """Where the loop's time went: evaluation, the activation probe, the in-step probes, and the rest of the work
    between steps (rows, W&B, progress lines)."""
    m = loop.measure
    between = loop.seconds["log_s"] - m.eval_s - m.probe_s
    seconds = {"train_loop_s": loop.seconds["train_loop_s"], "eval_s": m.eval_s, "probe_s": m.probe_s,
               "step_probe_s": loop.step_probes.seconds, "log_s": between}
    return {k: round(v, 3) for k, v in seconds.items()}
