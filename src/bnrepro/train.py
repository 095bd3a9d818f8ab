"""The training loop every experiment shares: data as device tensors, index-slice batches, and
evaluation, probes and logging on fixed cadences. Writes metrics.parquet, config_resolved.yaml and
run.json into the run folder, whatever happens (completed, diverged, failed or interrupted)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial, reduce
from math import gcd
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from bnrepro.augment import random_crop_flip
from bnrepro.config import validate, validate_against_data
from bnrepro.data import BatchSampler, Split, generator, load_dataset, to_csr
from bnrepro.logger import NullLogger, build_logger
from bnrepro.metrics import MetricStore
from bnrepro.models import MLP, NoisyBatchNorm, build_model, fused_loss_and_grad, supports_fused
from bnrepro.optim import build_optimizer
from bnrepro.probes import ActivationProbe, ICSProbe, LandscapeProbe, NoiseReplay, eta_grid
from bnrepro.runinfo import environment, now, save_code_diff, write_json
from bnrepro.worker import CAN_FORK, KINDS, EventWorker

log = logging.getLogger("bnrepro")

CHECKPOINT_METRICS_EVERY_S = 60.0  # rewrite metrics.parquet at most this often, so a killed run keeps its past


def sum_squared_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||f(x) - y||^2 summed over the batch and the outputs: the deep linear network's loss at the paper's scale."""
    return (out.float() - y).pow(2).sum()


# The training loss of each task; only classification has an accuracy.
LOSSES = {"classification": F.cross_entropy, "regression": sum_squared_error}


def cross_entropy_sum_or_mean(out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """F.cross_entropy's values, for evaluation: log_softmax along the rows of the transposed logits. Over 10
    classes the row-wise kernel is ~15x slower (1.5 ms of a 10k-image MNIST evaluation); the values are the same
    in float32 (tests/test_speed_paths.py). Other dtypes (autocast) take F.cross_entropy."""
    if out.dtype != torch.float32:
        return F.cross_entropy(out, y, reduction=reduction)
    return F.nll_loss(torch.log_softmax(out.t().contiguous(), 0).t(), y, reduction=reduction)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from bnrepro import ConfigError

        raise ConfigError("device=cuda but no CUDA device is available (use device=auto or device=cpu)")
    return torch.device(name)


def identity(cfg: DictConfig) -> dict:
    """The columns that say which run a metric row belongs to."""
    return {
        "experiment": cfg.experiment_name,
        "variant": cfg.model.norm,
        "lr": float(cfg.optim.lr),
        "seed": int(cfg.seed),
        "batch_size": int(cfg.trainer.batch_size),
        "momentum": float(cfg.optim.momentum),
        "init": cfg.model.get("init", "glorot"),
        "max_steps": int(cfg.trainer.max_steps),
    }


def run_name(cfg: DictConfig) -> str:
    try:
        from hydra.core.hydra_config import HydraConfig

        name = HydraConfig.get().job.override_dirname
        if name:
            return name
    except (ImportError, ValueError):
        pass
    return f"model.norm={cfg.model.norm} optim.lr={cfg.optim.lr:g} seed={cfg.seed}"


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: Split, chunk: int = 1000, task: str = "classification") -> dict[str, float]:
    """Loss and accuracy over the whole split. Model-ready inputs go through in one pass (MNIST: 10k rows, CSR);
    splits with a batch transform (uint8 images) go through in chunks, transformed on the device.
    Regression reports the summed squared error over the split (the training loss's scale at full batch)."""
    was_training = model.training
    model.eval()
    try:
        if task == "regression":
            return {"loss": float(sum(sum_squared_error(model(x), y) for x, y in split.chunks(chunk)))}
        if split.transform is None:
            out = model(split.eval_input)
            loss = cross_entropy_sum_or_mean(out, split.y)
            acc = (out.argmax(1) == split.y).float().mean()
        else:
            total, correct = 0.0, 0
            for x, y in split.chunks(chunk):
                out = model(x)
                total += float(cross_entropy_sum_or_mean(out, y, reduction="sum"))
                correct += int((out.argmax(1) == y).sum())
            loss, acc = total / len(split), correct / len(split)
    finally:
        model.train(was_training)
    return {"loss": float(loss), "acc": float(acc)}


def use_fused_step(cfg: DictConfig, model: torch.nn.Module, task: str) -> bool:
    """trainer.fused_step: auto takes the MLP's hand-written backward (models/mlp_fused.py, bitwise the same as
    autograd) where it applies; false always uses autograd; true insists on it."""
    mode = cfg.trainer.get("fused_step", "auto")
    # The fused step computes the classification loss (cross-entropy) in float32.
    applies = supports_fused(model) and task == "classification" and not cfg.trainer.get("amp")
    if mode is True and not applies:
        from bnrepro import ConfigError

        raise ConfigError("trainer.fused_step=true needs model=mlp with model.norm=none or batch, the "
                          "classification loss and trainer.amp=null (use auto or false)")
    return applies and mode in ("auto", True)


def core_budget() -> int:
    """The cores this job may use: OMP_NUM_THREADS where a launcher set it (joblib gives each of n side-by-side
    jobs its share), else the CPUs this process may run on."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def eval_worker_kind(cfg: DictConfig, model: torch.nn.Module, device: torch.device, cores: int) -> str | None:
    """trainer.eval_worker: evaluation and probes beside training (bnrepro/worker.py; the same numbers), in a
    forked process or a thread, or None (in line).
    auto: for the MLP on a CPU when the job has a core beyond its training threads: its small steps gain nothing
    from that core, and its evaluation costs ~30 steps. A process where fork is safe (Linux), else a thread. Conv
    nets keep every core for their own steps, and a GPU works asynchronously already. Noisy BN is excluded: a copy
    of it would not continue its probe noise stream."""
    from bnrepro import ConfigError

    mode = cfg.trainer.get("eval_worker", "auto")
    t = cfg.trainer
    # config.validate refuses process|thread with noisy BN before any data loads; here noisy BN means no worker.
    noisy = any(isinstance(m, NoisyBatchNorm) for m in model.modules())
    if mode == "process" and (device.type != "cpu" or not CAN_FORK):
        raise ConfigError(f"trainer.eval_worker=process needs a CPU job on Linux (it forks; this is {device.type} "
                          f"on {sys.platform}); use thread, auto or false")
    if not (t.eval_every or t.probe_every) or mode is False or noisy:
        return None
    if mode in KINDS:
        return mode
    if device.type == "cpu" and type(model) is MLP and cores >= (t.threads or 1) + 1:
        return "process" if CAN_FORK else "thread"
    return None


def build_probe(cfg: DictConfig, model: torch.nn.Module, test: Split) -> ActivationProbe | None:
    if not cfg.trainer.probe_every:
        return None
    # Drawn once, from its own RNG stream, so that probing never shifts the training data order.
    g = generator(cfg.seed, "probe-batch")
    idx = torch.randperm(len(test), generator=g)[: cfg.probe.batch_size].to(test.x.device)
    x, _ = test.batch(idx)
    if test.x_eval is not None and test.x_eval.layout == torch.sparse_csr:
        x = to_csr(x)
    layers = cfg.probe.get("layers")
    try:
        return ActivationProbe(model, x, unit=cfg.probe.unit, qs=cfg.probe.percentiles, bn_stats=cfg.probe.bn_stats,
                               layers=list(layers) if layers else None, moments=cfg.probe.get("moments", False))
    except ValueError as e:
        from bnrepro import ConfigError

        raise ConfigError(f"probe.layers={list(layers)}: {e}") from e


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
    """Run one job; return its run.json content. Raises on failure after writing what it has."""
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    save_code_diff(run_dir)
    info: dict = {"status": "failed", "started_at": now(), "run_dir": str(run_dir), **environment()}
    store = MetricStore(identity(cfg))
    logger = NullLogger()
    loop = None
    try:
        with sigterm_as_interrupt():
            validate(cfg)
            cores = core_budget()
            if cfg.trainer.threads:
                torch.set_num_threads(cfg.trainer.threads)
            device = resolve_device(cfg.device)
            info["device"] = str(device)
            data = load_dataset(cfg.data, device)
            info.update(data=cfg.data.name, data_source=data.source, data_official=data.official)
            validate_against_data(cfg, len(data.train), len(data.test), data.in_features)
            if cfg.data.get("augment"):
                # Its own RNG stream: switching augmentation on never changes the data order.
                g_aug = generator(cfg.seed, "augment", device)
                data.train.augment = lambda x: random_crop_flip(x, g_aug)

            torch.manual_seed(cfg.seed)  # the model's initial weights, and nothing else, come from the global stream
            model = build_model(cfg.model).to(device)
            if cfg.trainer.get("channels_last"):
                model = model.to(memory_format=torch.channels_last)
                data.train.memory_format = data.test.memory_format = torch.channels_last
            opt = build_optimizer(cfg.optim, model)
            sampler = BatchSampler(data.train, cfg.trainer.batch_size, generator(cfg.seed, "data-order"))
            probe = build_probe(cfg, model, data.test)
            info["probe_unit"] = cfg.probe.unit if probe else None
            measure_at = partial(measure, data.test, data.task, cfg.trainer.get("eval_batch_size", 1000),
                                 autocast_factory(cfg.trainer.get("amp"), device))
            worker = None
            kind = eval_worker_kind(cfg, model, device, cores)
            if kind:
                if not cfg.trainer.threads:
                    torch.set_num_threads(max(1, cores - 1))  # the last core is the worker's
                # Before W&B starts: the process worker forks, and a fork should not copy W&B's threads and sockets.
                worker = EventWorker(model, lambda shadow: build_probe(cfg, shadow, data.test), measure_at, kind)
            info.update(threads=torch.get_num_threads(), eval_worker=kind)
            logger = build_logger(cfg.logger, run_dir, OmegaConf.to_container(cfg, resolve=True), run_name(cfg))
            loop = Loop(cfg, model, opt, sampler, data, probe, store, logger, run_dir, measure_at, worker)
            info["fused_step"] = loop.fused  # which backward the steps took (the same numbers either way)
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
            info.update(loop.summary())
            torch.save(loop.model.state_dict(), run_dir / "model_final.pt")
        info.update(finished_at=now(), wall_time_s=round(time.perf_counter() - t_start, 3))
        store.write(run_dir / "metrics.parquet")
        write_json(run_dir / "run.json", info)
        logger.finish(exit_code=0 if info["status"] != "failed" else 1)
    return info


def autocast_factory(amp: str | None, device: torch.device):
    """trainer.amp as a context-manager factory: bf16 autocast, or nothing."""
    if amp == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


class StepLog:
    """Every step's training loss and correct count, kept on the device (no host sync inside a step). A step only
    appends its loss, logits and labels (~1 us; writing a loss and a correct count per step cost ~11 us);
    record(), called with each round of events, reduces them into `losses` and `correct` a window at a time."""

    def __init__(self, steps: int, device: torch.device, classification: bool):
        self.losses = torch.zeros(steps, device=device)
        self.correct = torch.zeros(steps, dtype=torch.int64, device=device)
        self.classification = classification
        self.recorded = 0
        self._losses: list[torch.Tensor] = []
        self._outs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def append(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        self._losses.append(loss.detach())
        if self.classification:
            self._outs.append(out.detach())
            self._labels.append(y)

    def record(self) -> None:
        if not self._losses:
            return
        window = slice(self.recorded, self.recorded + len(self._losses))
        self.losses[window] = torch.stack(self._losses)
        if self._outs:  # every batch has the same size (BatchSampler drops an epoch's last incomplete one)
            self.correct[window] = (torch.stack(self._outs).argmax(2) == torch.stack(self._labels)).sum(1)
        self.recorded = window.stop
        for pending in (self._losses, self._outs, self._labels):
            pending.clear()


@dataclass
class Measured:
    """What evaluation and the activation probe found at one step."""

    step: int
    test: dict[str, float] | None
    acts: dict[str, float] | None
    kind: str | None  # "probe" (percentiles, to W&B too) or "deltas" (moment changes, metrics.parquet only)
    eval_s: float
    probe_s: float


def measure(test: Split, task: str, eval_batch_size: int, autocast, model, probe, step: int, eval_due: bool,
            kind: str | None) -> Measured:
    """Evaluation and the activation probe at one step; in line, or in the worker on its copy of the model (the
    same numbers: that copy holds this step's weights and buffers). A module-level function, so that the process
    worker holds everything it needs from the moment it forks."""
    t0 = time.perf_counter()
    with autocast():
        result = evaluate(model, test, eval_batch_size, task) if eval_due else None
        t1 = time.perf_counter()
        if result is not None and not math.isfinite(result["loss"]):
            kind = None  # diverged: nothing left to probe
        acts = probe() if kind == "probe" else probe.deltas() if kind == "deltas" else None
    return Measured(step, result, acts, kind, t1 - t0, time.perf_counter() - t1)


class Loop:
    def __init__(self, cfg, model, opt, sampler, data, probe, store, logger, run_dir, measure_at,
                 worker: EventWorker | None = None):
        self.cfg, self.model, self.opt, self.sampler = cfg, model, opt, sampler
        self.measure_at, self.worker = measure_at, worker  # measure_at(model, probe, step, eval_due, kind)
        self.data, self.probe, self.store, self.logger, self.run_dir = data, probe, store, logger, Path(run_dir)
        t = cfg.trainer
        self.max_steps, self.batch_size = t.max_steps, t.batch_size
        self.log_every, self.eval_every, self.probe_every = t.log_every, t.eval_every, t.probe_every
        self.wandb_every = cfg.logger.get("log_every", 0) if not isinstance(logger, NullLogger) else 0
        self.progress_every = t.progress_every or max(1, self.max_steps // 20)
        # The loop body checks one modulus; every cadence is a multiple of it.
        cadences = [c for c in (self.log_every, self.eval_every, self.probe_every, self.wandb_every) if c]
        # With moments on, a second probe one step after each probe measures consecutive-step changes (Fig 8).
        self.deltas_due = bool(probe is not None and probe.moments and self.probe_every > 1)
        if self.deltas_due:
            cadences.append(1)
        self.tick = reduce(gcd, cadences + [self.progress_every])
        device = data.train.x.device
        self.task = data.task
        self.loss_fn = LOSSES[data.task]
        self.classification = data.task == "classification"
        self.steps_log = StepLog(self.max_steps, device, self.classification)
        self.losses, self.correct = self.steps_log.losses, self.steps_log.correct
        self.fused = use_fused_step(cfg, model, data.task)
        self.steps_done, self.flushed, self.wandb_flushed = 0, 0, 0
        self.diverged_at: int | None = None
        self.last_test: dict[str, float] = {}
        self.best_test_acc = float("nan")
        self.timings = {"train_loop_s": 0.0, "eval_s": 0.0, "probe_s": 0.0, "step_probe_s": 0.0, "log_s": 0.0}
        if worker is not None:
            self.timings["worker_wait_s"] = 0.0  # eval_s and probe_s are then the worker's time
        # W&B payloads wait here until the measurements of their step are in, and leave in step order.
        self.outbox: deque[tuple[int, dict[str, float]]] = deque()
        self.measuring: set[int] = set()
        self.first_bad_step: int | None = None
        self.ics: ICSProbe | None = None
        self.landscape: LandscapeProbe | None = None
        self.pending: dict[str, float] = {}  # step-probe results waiting for the next W&B call
        self._last_write = time.perf_counter()
        self._t_loop = None
        self.autocast = autocast_factory(t.get("amp"), device)
        self.step_probes(cfg)

    def step_probes(self, cfg: DictConfig) -> None:
        """The probes that look inside a training step (ICS, loss landscape), when their cadence is on."""
        t = cfg.trainer
        self.ics_every, self.landscape_every = t.get("ics_every", 0), t.get("landscape_every", 0)
        replay = NoiseReplay(self.model)  # noisy BN: the probes see the noise the step drew
        if t.ics_every:
            layers = cfg.ics.layers
            self.ics = ICSProbe(self.model, self.loss_fn, list(layers) if layers else None, replay, self.autocast)
        if t.landscape_every:
            c = cfg.landscape
            etas = eta_grid(cfg.optim.lr, c.eta_min, c.eta_max, c.points, c.spacing)
            self.landscape = LandscapeProbe(self.model, self.loss_fn, etas, c.batched, replay, self.autocast)
        self.replay = replay

    def probe_before_step(self, step: int, x: torch.Tensor, y: torch.Tensor, ics: bool, landscape: bool) -> None:
        """After backward, before the optimizer step: the landscape at w, and what ICS needs of the step's start."""
        t0 = time.perf_counter()
        if landscape:
            self.record_step_probe(step, self.landscape(x, y))
        if ics:
            self.ics.before_step()
        self.timings["step_probe_s"] += time.perf_counter() - t0

    def probe_after_step(self, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
        t0 = time.perf_counter()
        self.record_step_probe(step, self.ics.after_step(x, y))
        self.timings["step_probe_s"] += time.perf_counter() - t0

    def record_step_probe(self, step: int, values: dict[str, float]) -> None:
        self.store.add(step, "probe", values)
        self.pending.update(values)

    # ------------------------------------------------------------------ the step
    def run(self) -> str:
        model, opt, sampler, fused = self.model, self.opt, self.sampler, self.fused
        loss_fn = self.loss_fn
        log_step = self.steps_log.append
        ics_every, landscape_every = self.ics_every, self.landscape_every
        model.train()
        self.events(0)
        self._t_loop = time.perf_counter()
        try:
            for step in range(1, self.max_steps + 1):
                ics = bool(ics_every) and step % ics_every == 0
                landscape = bool(landscape_every) and step % landscape_every == 0
                probing = ics or landscape
                if probing:
                    self.replay.snapshot()  # noisy BN: the probes replay the noise this step's forward draws
                x, y = sampler.next()
                opt.zero_grad()
                if fused:
                    loss, out = fused_loss_and_grad(model, x, y)
                else:
                    with self.autocast():
                        out = model(x)
                        loss = loss_fn(out, y)
                    loss.backward()
                if probing:
                    self.probe_before_step(step, x, y, ics, landscape)
                opt.step()
                if ics:
                    self.probe_after_step(step, x, y)
                log_step(loss, out, y)
                self.steps_done = step
                if (step % self.tick == 0 or step == self.max_steps) and not self.events(step):
                    return "diverged"
        except BaseException:
            self.finish_events(failing=True)
            raise
        finally:
            self.steps_log.record()
            self.finish_events()
            self.timings["train_loop_s"] = time.perf_counter() - self._t_loop
        return "completed"

    # ------------------------------------------------------------------ everything else
    def events(self, step: int) -> bool:
        """Metrics, evaluation, probes and logging due at `step`. Returns False once the run has diverged."""
        last = step == self.max_steps
        healthy = True
        t0 = time.perf_counter()
        self.steps_log.record()
        if step and (step % self.log_every == 0 or last):
            window = slice(self.flushed, step)
            train = {"loss": float(self.losses[window].mean())}
            if self.classification:
                train["acc"] = float(self.correct[window].sum()) / (self.batch_size * (step - self.flushed))
            self.flushed = step
            self.store.add(step, "train", train)
            healthy = self.check(step, math.isfinite(train["loss"]))
        if self.wandb_every and (step % self.wandb_every == 0 or last or not healthy):
            self.queue_wandb(step)
        t1 = time.perf_counter()
        eval_due = bool(self.eval_every) and (step % self.eval_every == 0 or last or not healthy)
        probe = None
        if self.probe and healthy and (step % self.probe_every == 0 or last):
            probe = "probe"
        elif self.deltas_due and healthy and step % self.probe_every == 1:
            probe = "deltas"  # one step after a probe: the change of its moments (Santurkar Fig 8)
        done: list[Measured] = []
        if eval_due or probe:
            if self.worker is None:
                done.append(self.measure_at(self.model, self.probe, step, eval_due, probe))
            else:
                self.measuring.add(step)
                done += self.worker.submit(step, eval_due, probe)
        if self.worker is not None:
            done += self.worker.ready(wait=last or not healthy)
        for measured in done:
            healthy = self.record(measured) and healthy
        t2 = time.perf_counter()
        self.send_wandb()
        if step and (step % self.progress_every == 0 or last or not healthy):
            self.progress(step)
        if time.perf_counter() - self._last_write > CHECKPOINT_METRICS_EVERY_S:
            self.store.write(self.run_dir / "metrics.parquet")
            self._last_write = time.perf_counter()
        t3 = time.perf_counter()
        self.timings["log_s"] += (t1 - t0) + (t3 - t2)
        if self.worker is not None:
            self.timings["worker_wait_s"] = self.worker.wait_s
        if not healthy:
            self.diverged_at = self.first_bad_step
            log.warning("[%s] diverged at step %d (non-finite loss): stopping, recorded as 'diverged'",
                        run_name(self.cfg), self.diverged_at)
        return healthy

    def check(self, step: int, finite: bool) -> bool:
        if not finite and (self.first_bad_step is None or step < self.first_bad_step):
            self.first_bad_step = step
        return finite

    def record(self, m: Measured) -> bool:
        """Store a measurement under its own step, and add it to that step's W&B payload. False if it diverged."""
        self.measuring.discard(m.step)
        self.timings["eval_s"] += m.eval_s
        self.timings["probe_s"] += m.probe_s
        payload: dict[str, float] = {}
        healthy = True
        if m.test is not None:
            self.store.add(m.step, "test", m.test)
            payload.update({f"test/{k}": v for k, v in m.test.items()})
            self.last_test = m.test
            if "acc" in m.test and (m.test["acc"] > self.best_test_acc or math.isnan(self.best_test_acc)):
                self.best_test_acc = m.test["acc"]
            healthy = self.check(m.step, math.isfinite(m.test["loss"]))
        if m.acts is not None:
            self.store.add(m.step, "probe", m.acts)
            if m.kind == "probe":
                payload.update(m.acts)
        entry = next((p for s, p in self.outbox if s == m.step), None)
        if entry is None and not healthy and self.wandb_every:
            self.queue_wandb(m.step)  # a diverged step is always logged
            entry = next(p for s, p in self.outbox if s == m.step)
        if entry is not None:
            entry.update(payload)
        return healthy

    def queue_wandb(self, step: int) -> None:
        """One W&B call per W&B cadence (a call costs ~1-2 ms): training metrics as means since the previous
        call, plus whatever the step-probes, evaluation and activation probe measured at this step.
        metrics.parquet keeps every record."""
        payload: dict[str, float] = {}
        if step > self.wandb_flushed:
            window = slice(self.wandb_flushed, step)
            payload["train/loss"] = float(self.losses[window].mean())
            if self.classification:
                payload["train/acc"] = float(self.correct[window].sum()) / (self.batch_size * (step - self.wandb_flushed))
            self.wandb_flushed = step
        payload.update(self.pending)
        self.pending = {}
        self.outbox.append((step, payload))
        if len(self.outbox) > 1 and self.outbox[-2][0] > step:  # a late divergence record: keep step order
            self.outbox = deque(sorted(self.outbox, key=lambda e: e[0]))

    def send_wandb(self) -> None:
        """W&B wants its steps in order: a payload leaves once no earlier or equal step is still being measured."""
        while self.outbox and self.outbox[0][0] < min(self.measuring, default=math.inf):
            step, payload = self.outbox.popleft()
            self.logger.log(payload, step=step)

    def finish_events(self, failing: bool = False) -> None:
        """At the end, however it ends: what the worker still measures is recorded and logged. When the run is
        failing already (an error, Ctrl-C), a worker error is only logged: the run's own error is the one to report."""
        if self.worker is None:
            return
        worker, self.worker = self.worker, None  # once
        try:
            for measured in worker.ready(wait=True):
                self.record(measured)
            self.send_wandb()
        except Exception as e:
            if not failing:
                raise
            log.warning("[%s] the evaluation worker's last results are lost: %s", run_name(self.cfg), e)
        finally:
            self.timings["worker_wait_s"] = worker.wait_s
            worker.close()

    def progress(self, step: int) -> None:
        elapsed = time.perf_counter() - self._t_loop
        test = " ".join(f"test_{k} {v:.4g}" for k, v in self.last_test.items())
        train_loss = float(self.losses[max(0, step - self.log_every) : step].mean())
        log.info("[%s] step %d/%d (%3.0f%%) train_loss %.4g %s | %.0f steps/s",
                 run_name(self.cfg), step, self.max_steps, 100 * step / max(1, self.max_steps),
                 train_loss, test, step / max(elapsed, 1e-9))

    def summary(self) -> dict:
        return {
            "steps_done": self.steps_done,
            "max_steps": self.max_steps,
            "diverged_at_step": self.diverged_at,
            "final_test_acc": self.last_test.get("acc"),
            "final_test_loss": self.last_test.get("loss"),
            "best_test_acc": None if math.isnan(self.best_test_acc) else self.best_test_acc,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
