"""One run: its folder and files, its status, signals, the device, and the objects the loop is built from.
Writes config_resolved.yaml, metrics.parquet and run.json into the run folder, however the run ends (completed,
diverged, failed or interrupted)."""

from __future__ import annotations

import signal
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from bnrepro.augment import random_crop_flip
from bnrepro.config import validate_against_data
from bnrepro.data import BatchSampler, generator, load_dataset
from bnrepro.evaluation import LOSSES, Measurements, StepProbes, autocast
from bnrepro.logger import NullLogger, build_logger
from bnrepro.loop import Loop
from bnrepro.metrics import MetricStore
from bnrepro.models import build_model
from bnrepro.optim import build_optimizer
from bnrepro.plan import resolve
from bnrepro.record import Record, StepLog
from bnrepro.runinfo import environment, now, save_code_diff, write_json


def run_name() -> str | None:
    """Hydra's name for the job (its overrides), when Hydra launched it."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().job.override_dirname or None
    except (ImportError, ValueError):
        return None


@contextmanager
def sigterm_as_interrupt():
    """A cluster scheduler's SIGTERM ends the run like Ctrl-C: metrics and run.json are still written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Run one job; return its run.json content. A bad config value raises ConfigError before anything is written;
    any later failure raises after writing what the run has."""
    plan = resolve(cfg, run_name())
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    save_code_diff(run_dir)
    info: dict = {"status": "failed", "started_at": now(), "run_dir": str(run_dir), **environment()}
    store = MetricStore(plan.identity)
    logger = NullLogger()
    loop = None
    try:
        with sigterm_as_interrupt():
            if plan.threads:
                torch.set_num_threads(plan.threads)
            info.update(device=str(plan.device), threads=torch.get_num_threads(), fused_step=plan.fused)
            data = load_dataset(cfg.data, plan.device)
            info.update(data=cfg.data.name, data_source=data.source, data_official=data.official)
            validate_against_data(cfg, len(data.train), len(data.test), data.in_features)
            if cfg.data.get("augment"):
                # Its own RNG stream: switching augmentation on never changes the data order.
                g_aug = generator(cfg.seed, "augment", plan.device)
                data.train.augment = lambda x: random_crop_flip(x, g_aug)

            torch.manual_seed(cfg.seed)  # the model's initial weights, and nothing else, come from the global stream
            model = build_model(cfg.model).to(plan.device)
            if cfg.trainer.channels_last:
                model = model.to(memory_format=torch.channels_last)
                data.train.memory_format = data.test.memory_format = torch.channels_last
            opt = build_optimizer(cfg.optim, model)
            sampler = BatchSampler(data.train, plan.batch_size, generator(cfg.seed, "data-order"))
            loss_fn = LOSSES[data.task]
            measure = Measurements(plan, model, data.test, data.task, cfg.seed)
            info["probe_unit"] = plan.probe["unit"] if plan.probe else None
            logger = build_logger(cfg.logger, run_dir, OmegaConf.to_container(cfg, resolve=True), plan.name)
            steps = StepLog(plan.every.steps, plan.device, data.task == "classification")
            record = Record(store, logger, steps, plan.batch_size, plan.name, plan.every.steps,
                            run_dir / "metrics.parquet")
            loop = Loop(plan.every, model, opt, sampler, loss_fn, plan.fused, autocast(plan.amp, plan.device),
                        measure, StepProbes(plan, model, loss_fn), record, plan.divergence_threshold,
                        plan.stop_on_divergence)
            info["status"] = loop.run()
    except KeyboardInterrupt as e:
        info["error"] = f"interrupted ({e})" if str(e) else "interrupted"
        raise
    except Exception as e:
        info["error"] = f"{type(e).__name__}: {e}"
        info["traceback"] = traceback.format_exc()
        raise
    finally:
        if loop is not None:
            info.update(loop.record.summary(loop.steps_done), timings=timings(loop))
            torch.save(loop.model.state_dict(), run_dir / "model_final.pt")
        info.update(finished_at=now(), wall_time_s=round(time.perf_counter() - t_start, 3))
        store.write(run_dir / "metrics.parquet")
        write_json(run_dir / "run.json", info)
        logger.finish(exit_code=0 if info["status"] != "failed" else 1)
    return info


def timings(loop: Loop) -> dict[str, float]:
    """Where the loop's time went: evaluation, the activation probe, the in-step probes, and the rest of the work
    between steps (rows, W&B, progress lines)."""
    m = loop.measure
    between = loop.seconds["log_s"] - m.eval_s - m.probe_s
    seconds = {"train_loop_s": loop.seconds["train_loop_s"], "eval_s": m.eval_s, "probe_s": m.probe_s,
               "step_probe_s": loop.step_probes.seconds, "log_s": between}
    return {k: round(v, 3) for k, v in seconds.items()}
