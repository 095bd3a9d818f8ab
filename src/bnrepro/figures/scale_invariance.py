"""Scale invariance and the effective learning rate (probe.weights; van Laarhoven 2017, Hoffer et al. 2018, Arora,
Li & Lyu 2019): how each hidden layer's effective step η/‖w‖² moves over training at each learning rate, where it
ends against η, and the check that BN's weights are orthogonal to their gradients."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bnrepro.figures.shared import median_and_range
from bnrepro.figures.style import colour, has_metric, label, ordered, provenance, save, setup

MARKERS = "osD^v<>"


def _weights(metrics: pd.DataFrame) -> pd.DataFrame:
    d = metrics[(metrics["split"] == "probe") & metrics["metric"].astype(str).str.startswith("weights/")].copy()
    parts = d["metric"].astype(str).str.extract(r"^weights/layer(?P<layer>\d+)/(?P<stat>\w+)$")
    d = pd.concat([d, parts], axis=1).dropna(subset=["stat"])
    d["layer"], d["variant"] = d["layer"].astype(int), d["variant"].astype(str)
    d["value"] = d["value"].astype("float64")
    return d[d["layer"] < d["layer"].max()]  # the output layer: no normalisation follows it in any network


def fig_effective_lr(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """Left, one panel per variant: layer #2's effective learning rate over training, a line per lr. Third: each
    hidden layer's final effective learning rate against η (slope 1: the norms leave the spread of η as it is;
    flat: every η ends at the same effective step). Right: |cos(W, ∇W)| of layer #2 over training."""
    if not has_metric(metrics, r"^weights/layer\d+/eff_lr$"):
        return []
    setup()
    d = _weights(metrics)
    variants = ordered(set(d["variant"]))
    lrs = sorted(d["lr"].unique())
    shades = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(lrs)))
    fig, axes = plt.subplots(1, len(variants) + 2, figsize=(4.2 * (len(variants) + 2), 4), layout="constrained")
    eff = d[d["stat"] == "eff_lr"]
    for ax, v in zip(axes, variants):
        for lr, shade in zip(lrs, shades):
            sel = (eff["variant"] == v) & np.isclose(eff["lr"], lr) & (eff["layer"] == 2)
            by_step = eff[sel].groupby("step")["value"]
            if by_step.ngroups:
                median_and_range(ax, by_step, shade, f"η = {lr:g}")
        ax.set_yscale("log")
        ax.set_title(f"{label(v)}: layer #2", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("effective learning rate η / mean ‖w_row‖²")
        ax.legend(fontsize=7)
    ax = axes[len(variants)]
    final = eff[eff["step"] == eff.groupby("run_id")["step"].transform("max")]
    for v in variants:
        for k, layer in enumerate(sorted(final["layer"].unique())):
            by_lr = final[(final["variant"] == v) & (final["layer"] == layer)].groupby("lr")["value"]
            if not by_lr.ngroups:
                continue
            med = by_lr.median()
            ax.errorbar(med.index, med, yerr=[med - by_lr.min(), by_lr.max() - med], color=colour(v),
                        marker=MARKERS[k % len(MARKERS)], ms=4, lw=1, capsize=2,
                        label=f"{label(v)}, layer #{layer}")
    span = np.array([min(lrs), max(lrs)])
    start = final[np.isclose(final["lr"], min(lrs))]["value"].median()
    ax.plot(span, start * span / span[0], color="#444444", ls=":", lw=1, label="slope 1 (no compression)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("final effective learning rate")
    ax.set_title("where each η ends", fontsize=10)
    ax.legend(fontsize=6)
    ax = axes[-1]
    cos = d[(d["stat"] == "cos") & (d["layer"] == 2)]
    for v in variants:
        by_step = cos[cos["variant"] == v].assign(value=lambda x: x["value"].abs()).groupby("step")["value"]
        ax.plot(by_step.median().index, by_step.median().clip(lower=1e-12), color=colour(v), lw=1.2, label=label(v))
    ax.set_yscale("log")
    ax.set_title("|cos(W₂, ∇W₂)|: 0 for a scale-invariant weight", fontsize=10)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    fig.suptitle("Scale invariance: the weights' norms and the effective learning rate η/‖w‖² (Arora et al. 2019)")
    seeds = d["seed"].nunique()
    return save(fig, out, "fig_effective_lr", provenance(runs, "gradient on the fixed probe batch" + (
        f"; line: median, band and bars: range over {seeds} seeds; cosine: median over every lr and seed"
        if seeds > 1 else "")))
