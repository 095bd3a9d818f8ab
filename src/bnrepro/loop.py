"""The training loop: the step, and what happens every N steps (plan.Cadence). It receives built objects and
decided values; it never reads the config."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import reduce
from math import gcd

import torch

from bnrepro import ConfigError
from bnrepro.config.plan import Plan
from bnrepro.evaluation import Measurements, StepProbes, autocast, clock
from bnrepro.models import fused_loss_and_grad
from bnrepro.optim import current_lr
from bnrepro.record import Record


class Interrupted(Exception):
    """A signal (Ctrl-C, SIGTERM, SIGUSR1, SIGUSR2) stopped the run at a step boundary, after a checkpoint."""

    def __init__(self, signal: str, step: int):
        super().__init__(f"{signal} at step {step}")
        self.signal, self.step = signal, step


class Loop:
    def __init__(self, plan: Plan, model, opt, sampler, loss_fn, measure: Measurements, step_probes: StepProbes,
                 record: Record, streams: dict, checkpoint: Callable[[int], None], stop,
                 schedule: Callable[[int], None] | None = None):
        """streams: every RNG stream training draws from (checkpointed); checkpoint(step) writes one; stop.signal
        is set by a signal handler, and the loop stops at the next step boundary; schedule(step) sets the learning
        rate of that step (None: constant)."""
        self.every, self.model, self.opt, self.sampler, self.loss_fn = plan.every, model, opt, sampler, loss_fn
        t = plan.config.trainer
        self.fused, self.autocast, self.device = plan.fused, autocast(t.amp, plan.device), plan.device
        # The step's forward: compiled where asked. The same module underneath (its parameters, buffers and
        # state_dict), which evaluation, the probes and the checkpoint use as it is.
        self.forward = torch.compile(model, mode=t.compile) if t.compile else model
        self.measure, self.step_probes, self.record = measure, step_probes, record
        self.streams, self.checkpoint, self.stop, self.schedule = streams, checkpoint, stop, schedule
        self.steps_done = 0
        self.threshold, self.stop_on_divergence = t.divergence_threshold, t.stop_on_divergence
        self.limit: float | None = None  # threshold x the first step's training loss
        self.seconds = {"train_loop_s": 0.0, "log_s": 0.0}
        every = plan.every
        # The loop checks one modulus; every cadence is a multiple of it (deltas come one step after a probe).
        cadences = [every.log, every.eval, every.probe, every.wandb, every.progress, 1 if every.deltas else 0]
        self.tick = reduce(gcd, [c for c in cadences if c])
        self.last_progress = time.monotonic()

    # A progress line at least this often in wall time, whatever the step cadence (a long run's 5% can take hours).
    PROGRESS_SECONDS = 30.0

    def run(self, start: int = 0) -> str:
        """From step start+1 (0: a new run) to the end: 'completed', or 'diverged' (a non-finite loss, or a training
        loss over the divergence threshold). Raises Interrupted after a checkpoint when a signal came."""
        every, model, opt, sampler, probes = self.every, self.model, self.opt, self.sampler, self.step_probes
        model.train()
        if start == 0:
            self.between_steps(0)
        t0 = clock(self.device)  # the loop's clock starts after the step-0 measurements
        self.record.started, self.record.started_at = t0, start
        try:
            for step in range(start + 1, every.steps + 1):
                ics, landscape = every.due(every.ics, step), every.due(every.landscape, step)
                if ics or landscape:
                    probes.replay.snapshot()  # noisy BN: the probes replay the noise this step's forward draws
                x, y = sampler.next()
                if self.schedule is not None:
                    self.schedule(step)
                opt.zero_grad()
                if self.fused:
                    loss, out = fused_loss_and_grad(model, x, y)
                else:
                    with self.autocast():
                        out = self.forward(x)
                        loss = self.loss_fn(out, y)
                    loss.backward()
                if ics or landscape:  # after backward, before the update: the landscape at w, and G for ICS
                    self.record.step_probe(step, probes.before_update(x, y, ics, landscape))
                first = [p.detach().clone() for p in self.matrices()] if step == 1 and not self.schedule else None
                opt.step()
                if first is not None:
                    self.check_moved(first)
                if ics:
                    self.record.step_probe(step, probes.after_update(x, y))
                self.record.steps.append(loss, out, y)
                self.steps_done = step
                if (step % self.tick == 0 or step == every.steps) and not self.between_steps(step):
                    break
                if (every.due(every.checkpoint, step) or self.stop.signal) and step < every.steps:
                    self.checkpoint(step)
                    if self.stop.signal:
                        raise Interrupted(self.stop.signal, step)
            if self.measure.shift is not None:
                self.record.probe(self.steps_done, self.measure.after_training())
            return "completed" if self.record.diverged_at is None else "diverged"
        finally:
            self.record.steps.reduce()
            self.seconds["train_loop_s"] = clock(self.device) - t0

    def matrices(self) -> list[torch.Tensor]:
        """The weight matrices and filters (a zero-initialised bias moves by any step, however small)."""
        return [p for p in self.model.parameters() if p.dim() > 1]

    def check_moved(self, before: list[torch.Tensor]) -> None:
        """After the first step: a learning rate so small that every weight's step rounds to nothing in float32
        would train nothing and still end 'completed'."""
        if all(torch.equal(b, p) for b, p in zip(before, self.matrices())):
            raise ConfigError(f"optim.lr={current_lr(self.opt):g}: the first step changed no weight (each step rounds "
                              "to nothing next to the float32 weights): choose a larger learning rate")

    def between_steps(self, step: int) -> bool:
        """The rows, evaluation, probes and logging due after `step` (0: before the first). False: stop here."""
        t0 = clock(self.device)
        e, record, measure = self.every, self.record, self.measure
        last = step == e.steps
        healthy, exploded = True, None
        if step and (e.due(e.log, step) or last):
            loss = record.train(step)
            healthy = math.isfinite(loss)
            exploded = self.explosion(loss) if healthy else None
        # The step a run diverges at is always evaluated, logged and shown; a run that trains on is not, after it.
        news = bool(exploded) and record.diverged_at is None
        if e.eval and (e.due(e.eval, step) or last or not healthy or news):
            healthy = record.test(step, measure.evaluate()) and healthy
            if measure.train is not None:
                record.train_eval(step, measure.evaluate_train())
        if step == 0 and measure.init is not None:
            record.probe(0, measure.at_init())
        if healthy and measure.probe is not None and (e.due(e.probe, step) or last):
            record.probe(step, measure.activations())
        elif healthy and e.deltas and step % e.probe == 1:
            record.probe(step, measure.activations(deltas=True), wandb=False)
        record.send(step if e.wandb and (e.due(e.wandb, step) or last or not healthy or news) else None)
        overdue = time.monotonic() - self.last_progress >= self.PROGRESS_SECONDS
        if step and (e.due(e.progress, step) or last or not healthy or news or overdue):
            record.progress(step, e.log)
            self.last_progress = time.monotonic()
        stop = not healthy or bool(exploded and self.stop_on_divergence)
        if not healthy or exploded:
            record.diverged(step, "non-finite loss" if not healthy else exploded, stopping=stop)
        self.seconds["log_s"] += clock(self.device) - t0
        return not stop

    def explosion(self, loss: float) -> str | None:
        """Why a finite training loss counts as diverged (over the threshold), or None."""
        if self.threshold is None:
            return None
        if self.limit is None:
            self.limit = self.threshold * float(self.record.steps.losses[0])
        if loss > self.limit:
            return f"training loss {loss:.4g} > {self.threshold:g} x the first step's {self.limit / self.threshold:.4g}"
        return None
