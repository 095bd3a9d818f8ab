"""Percentiles of each hidden layer's activation input over training (Ioffe & Szegedy Fig 1b,c; the article's
Figs 3-4)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from bnrepro.models import NoisyBatchNorm
from bnrepro.probes.context import frozen_norm_stats, inputs_of

# Noisy BN's moments are read twice: under fresh noise at every probe, as Santurkar et al. (Fig 8) read them, which
# shows the noise the layer injects; and under the same noise at every probe, which shows the layer's output moving
# without the noise's own move (after a normalisation, mostly its γ and β). Without noisy BN both are the same
# numbers, stored under both names so that rows compare networks by one name.
SAME_NOISE = "_same_noise"


def percentiles(x: torch.Tensor, qs: Sequence[float]) -> np.ndarray:
    """Exact percentiles of all values of `x`, with numpy's default ('linear') interpolation."""
    flat = x.detach().reshape(-1)
    if flat.dtype in (torch.bfloat16, torch.float16):  # autocast's dtypes: no numpy counterpart / no quantile
        flat = flat.float()
    return _percentiles_numpy(flat.numpy(), qs) if flat.device.type == "cpu" else _percentiles_torch(flat, qs)


def _percentiles_numpy(v: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    # np.percentile selects (introselect) rather than sorts: ~0.33 ms for the 25,600 values a probe pools,
    # faster than torch.quantile, a full sort, or a hand-written multi-rank np.partition here.
    return np.percentile(v, qs).astype(np.float64)


def _percentiles_torch(flat: torch.Tensor, qs: Sequence[float]) -> np.ndarray:
    """numpy's 'linear' percentiles from one sort on the device, which avoids copying the activations to the host.
    torch.quantile is not used: on CUDA it refuses more than 2^24 values (one VGG layer pooled over 256 images)."""
    values = flat.sort().values.double()
    pos = torch.tensor([q / 100.0 for q in qs], device=flat.device, dtype=torch.float64) * (len(values) - 1)
    lo = pos.floor().long()
    hi = torch.clamp(lo + 1, max=len(values) - 1)
    frac = pos - lo
    return (values[lo] + (values[hi] - values[lo]) * frac).cpu().numpy()


class ActivationProbe:
    """Records the inputs of the model's tap modules on a fixed batch and reduces them to percentiles.

    Two views per layer: "unit", one fixed unit's (for conv layers: channel's) distribution over the
    probe batch (the paper's "typical sigmoid"), and "pooled", all values of the layer together (the
    article's notebook). `layers` restricts the probe to some taps; `moments` adds each view's mean and std, under
    fresh noise and under the same noise at every probe (SAME_NOISE).
    """

    def __init__(
        self,
        model: nn.Module,
        x_probe: torch.Tensor,
        unit: int = 0,
        qs: Iterable[float] = (15, 50, 85),
        bn_stats: str = "batch",
        layers: Iterable[str] | None = None,
        moments: bool = False,
    ):
        self.model, self.x_probe, self.unit = model, x_probe, unit
        self.qs, self.bn_stats, self.moments = list(qs), bn_stats, moments
        taps = model.taps()
        unknown = sorted(set(layers or ()) - set(taps))
        if unknown:
            raise ValueError(f"unknown layers {unknown}; the model has {list(taps)}")
        self.taps = {name: taps[name] for name in layers} if layers else taps
        self.noisy = any(isinstance(m, NoisyBatchNorm) for m in model.modules())
        # (layer, view) or (layer, view, SAME_NOISE) -> mean, var
        self.last_moments: dict[tuple[str, ...], tuple[float, float]] = {}

    def state_dict(self) -> dict:
        """The moments of the last probe, from which the next probe's step-to-step changes (Fig 8) are measured."""
        return {"moments": dict(self.last_moments)}

    def load_state_dict(self, state: dict) -> None:
        self.last_moments = dict(state["moments"])

    def capture(self, noise: str = "probe") -> dict[str, torch.Tensor]:
        with inputs_of(self.taps) as captured, torch.no_grad(), frozen_norm_stats(self.model, self.bn_stats, noise):
            self.model(self.x_probe)
        return captured

    def __call__(self) -> dict[str, float]:
        out = {}
        captured = self.capture()
        for name, act in captured.items():
            for view, values in self.views(act):
                for q, v in zip(self.qs, percentiles(values, self.qs)):
                    out[metric_key(name, view, f"p{q:g}")] = float(v)
        if self.moments:
            for key, (mean, var) in self._all_moments(captured).items():
                self.last_moments[key] = (mean, var)
                out[metric_key(*key[:2], "mean" + "".join(key[2:]))] = mean
                out[metric_key(*key[:2], "std" + "".join(key[2:]))] = var ** 0.5
        return out

    def views(self, act: torch.Tensor) -> tuple[tuple[str, torch.Tensor], ...]:
        return ("unit", act[:, self.unit]), ("pooled", act)

    def _all_moments(self, captured: dict[str, torch.Tensor]) -> dict[tuple[str, ...], tuple[float, float]]:
        """Each layer's and view's (mean, var) under fresh noise, keyed (layer, view), and under the same noise at
        every probe, keyed (layer, view, SAME_NOISE): one more forward with noisy BN, the same values without."""
        same = self.capture("same") if self.noisy else captured
        out = {}
        for suffix, acts in (((), captured), ((SAME_NOISE,), same)):
            for name, act in acts.items():
                for view, values in self.views(act):
                    out[(name, view, *suffix)] = _moments(values)
        return out

    def deltas(self) -> dict[str, float]:
        """|mu_{t+1} - mu_t| and |var_{t+1} - var_t| of each layer's activations, for the unit and pooled
        (Santurkar Fig 8): called one step after a probe, on the same batch, against the moments that probe
        recorded. Both views, because noise drawn per channel (noisy BN) partly cancels when pooled."""
        out = {}
        for key, (mean, var) in self._all_moments(self.capture()).items():
            if key in self.last_moments:
                prev_mean, prev_var = self.last_moments[key]
                out[metric_key(*key[:2], "dmean" + "".join(key[2:]))] = abs(mean - prev_mean)
                out[metric_key(*key[:2], "dvar" + "".join(key[2:]))] = abs(var - prev_var)
        return out


def _moments(act: torch.Tensor) -> tuple[float, float]:
    flat = act.detach().double().reshape(-1)
    return float(flat.mean()), float(flat.var())


def metric_key(layer: str, view: str, stat: str) -> str:
    """The one place the probe's metric names are spelled: act/<layer>/<view>/<stat>, e.g. act/layer3/pooled/p15."""
    return f"act/{layer}/{view}/{stat}"
