"""The losses, evaluation on the test split, and the probes a run takes, built from its Plan. Every measurement
leaves training untouched: its own RNG streams, frozen normalisation statistics, no writes to weights."""

from __future__ import annotations

import contextlib
import dataclasses
import time

import torch
import torch.nn.functional as F

from bnrepro.config.plan import Plan
from bnrepro.config.schema import Probe
from bnrepro.data import Split, generator, to_csr
from bnrepro.probes import ActivationProbe, ICSProbe, InitProbe, LandscapeProbe, NoiseReplay, WeightProbe
from bnrepro.probes.affine import affine_values
from bnrepro.probes.shift import ShiftProbe


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


def clock(device: torch.device) -> float:
    """time.perf_counter() once the device's queued work is done: on a GPU each phase's time is then its own, not
    that of whichever phase syncs first."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def autocast(amp: str | None, device: torch.device):
    """trainer.amp as a context-manager factory: bf16 autocast, or nothing."""
    if amp == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


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


class Measurements:
    """What the loop measures between steps, on the model as it is: the test split, and the activation probe on
    its fixed batch. Keeps the time each took."""

    def __init__(self, plan: Plan, model: torch.nn.Module, test: Split, task: str, train: Split | None = None,
                 loss_fn=None, lr=None):
        """lr(): the learning rate the optimiser uses now (for probe.weights)."""
        c, t = plan.config, plan.config.trainer
        self.model, self.test, self.task, self.chunk = model, test, task, t.eval_batch_size
        self.train = train_subset(train, t.eval_train, c.seed) if train is not None and t.eval_train else None
        self.autocast, self.device = autocast(t.amp, plan.device), plan.device
        p = c.probe
        init, weights = p.init and loss_fn, plan.every.probe and p.weights and loss_fn and lr
        x, y = probe_batch(p, test, c.seed) if plan.every.probe or init else (None, None)  # one batch for all
        self.probe = (ActivationProbe(model, x, unit=p.unit, qs=p.percentiles, bn_stats=p.bn_stats, layers=p.layers,
                                      moments=p.moments) if plan.every.probe else None)
        self.affine = p if plan.every.probe and p.affine else None
        self.shift = (ShiftProbe(model, train, test, p.shift, t.batch_size, c.seed)
                      if p.shift and train is not None else None)
        self.init = InitProbe(model, loss_fn, x, y) if init else None
        self.weights = WeightProbe(model, loss_fn, x, y, lr) if weights else None
        self.eval_s = self.probe_s = 0.0

    def evaluate(self, split: Split | None = None) -> dict[str, float]:
        """The test split (or `split`) in evaluation mode: loss and accuracy."""
        t0 = clock(self.device)
        with self.autocast():
            result = evaluate(self.model, self.test if split is None else split, self.chunk, self.task)
        self.eval_s += clock(self.device) - t0
        return result

    def evaluate_train(self) -> dict[str, float]:
        """The fixed training subset, measured as the test split is: eval_loss, eval_acc."""
        return {f"eval_{k}": v for k, v in self.evaluate(self.train).items()}

    def at_init(self) -> dict[str, float]:
        """probe.init's readings of the untrained network (step 0)."""
        t0 = clock(self.device)
        result = self.init()
        self.probe_s += clock(self.device) - t0
        return result

    def after_training(self) -> dict[str, float]:
        """The evaluation under covariate shift (probe.shift), on the trained network."""
        t0 = clock(self.device)
        result = self.shift()
        self.probe_s += clock(self.device) - t0
        return result

    def activations(self, deltas: bool = False) -> dict[str, float]:
        """The probe's percentiles (and moments); with deltas, the change of its moments since the last probe."""
        # Outside autocast: in bf16 the percentiles and moment deltas would be rounded to ~3 significant digits.
        t0 = clock(self.device)
        result = self.probe.deltas() if deltas else self.probe()
        if self.affine and not deltas:
            result.update(affine_values(self.model, self.affine.unit, self.affine.percentiles))
        if self.weights and not deltas:
            result.update(self.weights())
        self.probe_s += clock(self.device) - t0
        return result


def train_subset(train: Split, n: int, seed: int) -> Split:
    """`n` training samples, drawn once from their own RNG stream (the data order never shifts)."""
    idx = torch.randperm(len(train), generator=generator(seed, "train-eval"))[:n].to(train.x.device)
    return dataclasses.replace(train, x=train.x.index_select(0, idx), y=train.y.index_select(0, idx), x_eval=None,
                               augment=None)


def probe_batch(p: Probe, test: Split, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The probes' fixed batch of test samples (inputs model-ready, and labels), drawn once from its own RNG stream,
    so that probing never shifts the training data order."""
    idx = torch.randperm(len(test), generator=generator(seed, "probe-batch"))[: p.batch_size].to(test.x.device)
    x, y = test.batch(idx)
    if test.x_eval is not None and test.x_eval.layout == torch.sparse_csr:
        x = to_csr(x)
    return x, y


class StepProbes:
    """The probes that look inside a training step: the loss landscape at w (after backward, before the update)
    and internal covariate shift (before and after the update). Noisy BN: they replay the noise the step drew."""

    def __init__(self, plan: Plan, model: torch.nn.Module, loss_fn):
        c = plan.config
        amp = autocast(c.trainer.amp, plan.device)
        self.replay = NoiseReplay(model)
        self.ics = ICSProbe(model, loss_fn, c.ics.layers, self.replay, amp) if plan.every.ics else None
        self.landscape = (LandscapeProbe(model, loss_fn, plan.etas, c.landscape.batched, self.replay, amp)
                          if plan.every.landscape else None)
        self.seconds, self.device = 0.0, plan.device

    def before_update(self, x: torch.Tensor, y: torch.Tensor, ics: bool, landscape: bool) -> dict[str, float]:
        t0 = clock(self.device)
        values = self.landscape(x, y) if landscape else {}
        if ics:
            self.ics.before_step()
        self.seconds += clock(self.device) - t0
        return values

    def after_update(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        t0 = clock(self.device)
        values = self.ics.after_step(x, y)
        self.seconds += clock(self.device) - t0
        return values
