"""What a run records: metric rows (metrics.parquet), W&B payloads, progress lines, the best and last test values,
and where it diverged. The loop tells it what happened; it decides nothing about when."""

from __future__ import annotations

import logging
import math
import time

import torch

from bnrepro.metrics import MetricStore

log = logging.getLogger("bnrepro")


class StepLog:
    """Every step's training loss and correct count, kept on the device (no host sync inside a step). A step only
    appends its loss, logits and labels (~1 us; writing a loss and a correct count per step cost ~11 us);
    reduce() turns the pending ones into `losses` and `correct` a window at a time. The buffers grow as steps are
    recorded (doubling, up to the run's length): a run asked for 10^9 steps holds only the steps it has done."""

    FIRST = 1 << 16  # steps the buffers hold at first (768 KB)

    def __init__(self, steps: int, device: torch.device, classification: bool):
        self.steps = steps
        self.losses = torch.zeros(min(steps, self.FIRST), device=device)
        self.correct = torch.zeros(min(steps, self.FIRST), dtype=torch.int64, device=device)
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

    def _reserve(self, n: int) -> None:
        """Room for n steps: the buffers at least doubled, never past the run's length."""
        if n > len(self.losses):
            size = min(max(n, 2 * len(self.losses)), max(n, self.steps))
            for name in ("losses", "correct"):
                old = getattr(self, name)
                new = old.new_zeros(size)
                new[: len(old)] = old
                setattr(self, name, new)

    def reduce(self) -> None:
        if not self._losses:
            return
        window = slice(self.recorded, self.recorded + len(self._losses))
        self._reserve(window.stop)
        self.losses[window] = torch.stack(self._losses)
        if self._outs:  # every batch has the same size (BatchSampler drops an epoch's last incomplete one)
            self.correct[window] = (torch.stack(self._outs).argmax(2) == torch.stack(self._labels)).sum(1)
        self.recorded = window.stop
        for pending in (self._losses, self._outs, self._labels):
            pending.clear()

    def state_dict(self) -> dict:
        """The steps recorded so far (pending ones reduced first)."""
        self.reduce()
        return {"losses": self.losses[:self.recorded].clone(), "correct": self.correct[:self.recorded].clone()}

    def load_state_dict(self, state: dict) -> None:
        n = len(state["losses"])
        self._reserve(n)
        self.losses[:n] = state["losses"].to(self.losses.device)
        self.correct[:n] = state["correct"].to(self.correct.device)
        self.recorded = n

    def means(self, start: int, stop: int, batch_size: int) -> dict[str, float]:
        """Training loss (and accuracy) over steps start+1..stop."""
        window = slice(start, stop)
        out = {"loss": float(self.losses[window].mean())}
        if self.classification:
            out["acc"] = float(self.correct[window].sum()) / (batch_size * (stop - start))
        return out


class Record:
    def __init__(self, store: MetricStore, logger, steps: StepLog, batch_size: int, name: str, max_steps: int):
        self.store, self.logger, self.steps, self.batch_size = store, logger, steps, batch_size
        self.name, self.max_steps = name, max_steps
        self.logged = self.sent = 0  # the last step whose training rows were stored / sent to W&B
        self.pending: dict[str, float] = {}  # in-step probe values, for the next W&B call
        self.measured: dict[str, float] = {}  # evaluation and probes at this step, for a W&B call at this step
        self.last_test: dict[str, float] = {}
        self.last_test_step: int | None = None
        self.best_test_acc: float | None = None
        self.diverged_at: int | None = None
        # When, and after which step, this process started stepping (a resumed run: its checkpoint's step)
        self.started, self.started_at = time.perf_counter(), 0

    # What goes on from the last checkpoint (the metric rows go with the store, the step log with StepLog)
    STATE = ("logged", "sent", "pending", "last_test", "last_test_step", "best_test_acc", "diverged_at")

    def state_dict(self) -> dict:
        return {"record": {k: getattr(self, k) for k in self.STATE}, "steps": self.steps.state_dict(),
                "rows": self.store.rows(), "logger": self.logger.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for k in self.STATE:
            setattr(self, k, state["record"][k])
        self.steps.load_state_dict(state["steps"])
        self.store.extend(state["rows"])
        self.logger.load_state_dict(state.get("logger", {}))  # absent in checkpoints written before 2026-12-04

    def train(self, step: int) -> float:
        """Store the training means since the previous row; return their loss."""
        self.steps.reduce()
        values = self.steps.means(self.logged, step, self.batch_size)
        self.logged = step
        self.store.add(step, "train", values)
        return values["loss"]

    def test(self, step: int, values: dict[str, float]) -> bool:
        self.store.add(step, "test", values)
        self.measured.update({f"test/{k}": v for k, v in values.items()})
        self.last_test, self.last_test_step = values, step
        acc = values.get("acc")
        if acc is not None and (self.best_test_acc is None or acc > self.best_test_acc):
            self.best_test_acc = acc
        return math.isfinite(values["loss"])

    def train_eval(self, step: int, values: dict[str, float]) -> None:
        """The training subset measured in evaluation mode (eval_acc, eval_loss), beside the training means."""
        self.store.add(step, "train", values)
        self.measured.update({f"train/{k}": v for k, v in values.items()})

    def probe(self, step: int, values: dict[str, float], wandb: bool = True) -> None:
        """Probe values under their step; to W&B too unless they are bulky per-step details (moment deltas)."""
        self.store.add(step, "probe", values)
        if wandb:
            self.measured.update(values)

    def step_probe(self, step: int, values: dict[str, float]) -> None:
        """What a probe inside the training step measured (ICS, landscape); W&B gets the latest with its next call."""
        self.store.add(step, "probe", values)
        self.pending.update(values)

    def send(self, step: int | None) -> None:
        """One W&B call per W&B cadence (a call costs ~1-2 ms): training means since the previous call, the latest
        in-step probes, and what was measured at this step. step=None: no call at this step, and what was measured
        at it stays in metrics.parquet only, which keeps every record."""
        if step is None:
            self.measured.clear()
            return
        payload = {}
        if step > self.sent:
            self.steps.reduce()
            payload = {f"train/{k}": v for k, v in self.steps.means(self.sent, step, self.batch_size).items()}
            self.sent = step
        self.logger.log({**payload, **self.pending, **self.measured}, step=step)
        self.pending, self.measured = {}, {}

    def progress(self, step: int, window: int) -> None:
        self.steps.reduce()
        elapsed = time.perf_counter() - self.started
        test = " ".join(f"test_{k} {v:.4g}" for k, v in self.last_test.items())
        if test:
            test += f" (step {self.last_test_step})"
        loss = float(self.steps.losses[max(0, step - window) : step].mean())
        log.info("[%s] step %d/%d (%3.0f%%) train_loss %.4g %s | %.0f steps/s", self.name, step, self.max_steps,
                 100 * step / self.max_steps, loss, test, (step - self.started_at) / max(elapsed, 1e-9))

    def diverged(self, step: int, why: str, stopping: bool) -> None:
        """The first divergence of the run is kept; its step is the run's diverged_at_step."""
        if self.diverged_at is None:
            self.diverged_at = step
            log.warning("[%s] diverged at step %d (%s): %s, recorded as 'diverged'", self.name, step, why,
                        "stopping" if stopping else "training on to the last step (trainer.stop_on_divergence=false)")

    def summary(self, steps_done: int, finished: bool) -> dict:
        """What run.json says of the run's results; "final" only when it ran to its end (or diverged)."""
        when = "final" if finished else "last"
        return {
            "steps_done": steps_done,
            "max_steps": self.max_steps,
            "diverged_at_step": self.diverged_at,
            f"{when}_test_acc": self.last_test.get("acc"),
            f"{when}_test_loss": self.last_test.get("loss"),
            "best_test_acc": self.best_test_acc,
        }
