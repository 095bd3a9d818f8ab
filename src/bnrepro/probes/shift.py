"""Evaluation under covariate shift, after training (the article's §C.2.3-C.2.4, `probe.shift`).

The trained network meets test inputs shifted by a growing amount (contrast scaled down, brightness added and
clipped to the pixel range, or only some of the classes), and BN normalises them in one of three ways:
- population: the running statistics gathered in training (`model.eval()`);
- batch: each test batch's own statistics (the article's workaround), running statistics left as they were;
- reestimated: running statistics gathered again on training images shifted the same way, then `model.eval()`.
Each gives the test accuracy and the 99th percentile of |activation input| at the last hidden layer (where the
activations "explode"). A network without batch statistics (no norm, LayerNorm) has the population mode only.

With batch statistics one image's prediction depends on the rest of its batch: `dependency/*` places single test
images into many random batches and measures how much their predicted probability and class move.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from bnrepro.data import Split, generator

KINDS = ("contrast", "brightness", "classes")
MODES = ("population", "batch", "reestimated")


def shifted(x: torch.Tensor, y: torch.Tensor, kind: str, level: float,
            valid: tuple[float, float] = (-float("inf"), float("inf"))) -> tuple[torch.Tensor, torch.Tensor]:
    """Model-ready inputs shifted: contrast multiplies them by `level` (1: unchanged), brightness adds `level`
    (0: unchanged) and clips to the `valid` range, classes keeps the samples of the first `level` classes (all:
    unchanged). Brightness clips because real images saturate; unclipped, it would be a constant offset, which
    the first BN layer removes exactly, so batch statistics would undo it by construction."""
    if kind == "contrast":
        return x * level, y
    if kind == "brightness":
        return (x + level).clamp(*valid), y
    if kind == "classes":
        keep = y < int(level)
        return x[keep], y[keep]
    raise ValueError(f"unknown shift kind {kind!r}; choose one of {KINDS}")


def inputs(split: Split) -> torch.Tensor:
    """The whole split, model-ready."""
    return split.x if split.transform is None else split.transform(split.x)


@contextlib.contextmanager
def kept_statistics(norms: list[nn.Module]):
    """Whatever the probe does to BN's running statistics and momentum is undone afterwards."""
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum)
             for m in norms]
    was_training = [m.training for m in norms]
    try:
        yield
    finally:
        for m, (mean, var, count, momentum), training in zip(norms, saved, was_training):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)
            m.momentum = momentum
            m.train(training)


class ShiftProbe:
    def __init__(self, model: nn.Module, train: Split, test: Split, spec, batch_size: int, seed: int):
        """spec: probe.shift (config.schema.Shift)."""
        self.model, self.train, self.test, self.spec, self.batch_size = model, train, test, spec, batch_size
        self.seed = seed
        self.norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        taps = model.taps()
        self.tap = taps[max(taps, key=lambda name: int(name.removeprefix("layer")))]

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        was_training = self.model.training
        out: dict[str, float] = {}
        try:
            x_test = inputs(self.test)
            valid = (float(x_test.min()), float(x_test.max()))  # the pixel range (MNIST: 0 to 1)
            n = min(self.spec.reestimate_samples, len(self.train))
            idx = torch.randperm(len(self.train), generator=generator(self.seed, "shift-reestimate"))[:n]
            x_train, y_train = self.train.batch(idx.to(self.train.x.device))
            for kind in KINDS:
                for level in getattr(self.spec, kind):
                    xt, yt = shifted(x_test, self.test.y, kind, level, valid)
                    xr, _ = shifted(x_train, y_train, kind, level, valid)
                    for mode in (MODES if self.norms else MODES[:1]):
                        with kept_statistics(self.norms):  # each mode starts from the trained statistics
                            acc, act = self.measure(xt, yt, mode, xr)
                        out[f"shift/{kind}/{level:g}/{mode}/acc"] = acc
                        out[f"shift/{kind}/{level:g}/{mode}/act_p99"] = act
            with kept_statistics(self.norms):
                out.update(self.dependency(x_test, self.test.y))
        finally:
            self.model.train(was_training)
        return out

    def measure(self, x: torch.Tensor, y: torch.Tensor, mode: str, x_reestimate: torch.Tensor) -> tuple[float, float]:
        seen: list[torch.Tensor] = []
        hook = self.tap.register_forward_hook(lambda m, inp, o: seen.append(inp[0].detach().abs().flatten()))
        try:
            if mode == "reestimated":
                for m in self.norms:
                    m.reset_running_stats()
                    m.momentum = None  # a cumulative average over the re-estimation batches
                self.model.train()
                for chunk in x_reestimate.split(self.batch_size):
                    if len(chunk) > 1:
                        self.model(chunk)
                seen.clear()
            if mode == "batch":
                for m in self.norms:
                    m.momentum = 0.0  # each batch normalised by its own statistics; the running ones stay
                self.model.train()
                order = torch.randperm(len(y), generator=generator(self.seed, "shift-batches")).to(x.device)
                x, y = x[order], y[order]
                # batches of the training size; a last batch of one sample would have no variance: merged back
                chunks = list(x.split(self.batch_size))
                if len(chunks) > 1 and len(chunks[-1]) == 1:
                    chunks[-2:] = [torch.cat(chunks[-2:])]
                logits = torch.cat([self.model(c) for c in chunks])
            else:
                self.model.eval()
                logits = torch.cat([self.model(c) for c in x.split(1000)])
        finally:
            hook.remove()
        acc = float((logits.argmax(1) == y).float().mean()) if len(y) else float("nan")
        act = torch.cat(seen).float()
        return acc, float(torch.quantile(act[:2**24], 0.99)) if len(act) else float("nan")

    def dependency(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Single test images, each in `batches_per_image` random batches of the training batch size (batch
        statistics; running statistics untouched): the sd of its probability for its true class across batches,
        and how often its predicted class differs from its most frequent one. Zero for a network whose output for
        one image ignores the others."""
        g = generator(self.seed, "shift-dependency")
        images = torch.randperm(len(y), generator=g)[: self.spec.single_images]
        for m in self.norms:
            m.momentum = 0.0
        self.model.train()
        sds, flips = [], []
        for i in images.tolist():
            probs, preds = [], []
            for _ in range(self.spec.batches_per_image):
                others = torch.randint(0, len(y), (self.batch_size - 1,), generator=g)
                batch = torch.cat([x[i:i + 1], x[others.to(x.device)]])
                p = self.model(batch)[0].softmax(0)
                probs.append(float(p[y[i]]))
                preds.append(int(p.argmax()))
            sds.append(torch.tensor(probs).std().item())
            mode = max(set(preds), key=preds.count)
            flips.append(sum(p != mode for p in preds) / len(preds))
        return {"shift/dependency/prob_sd": sum(sds) / len(sds), "shift/dependency/flip_rate": sum(flips) / len(flips)}
