"""The network at initialisation (probe.init): each layer's gradient norm and the effective rank of its batch
representation against its depth, with and without BN (Yang et al. 2019; Daneshmand et al. 2020)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bnrepro.figures.shared import median_and_range
from bnrepro.figures.style import colour, has_metric, label, ordered, provenance, save, setup

PANELS = (("grad_norm", "‖∂L/∂W_i‖ (log)", True), ("rank", "effective rank of layer i's batch representation", False))


def fig_init_depth(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    if not has_metric(metrics, r"^init/layer\d+/rank$"):
        return []
    setup()
    d = metrics[(metrics["split"] == "probe") & metrics["metric"].astype(str).str.startswith("init/")].copy()
    parts = d["metric"].astype(str).str.extract(r"^init/layer(?P<layer>\d+)/(?P<stat>\w+)$")
    d = pd.concat([d, parts], axis=1).dropna(subset=["stat"])
    d["layer"], d["variant"] = d["layer"].astype(int), d["variant"].astype(str)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for ax, (stat, ylabel, logy) in zip(axes, PANELS):
        for v in ordered(set(d["variant"])):
            median_and_range(ax, d[(d["variant"] == v) & (d["stat"] == stat)].groupby("layer")["value"], colour(v),
                             label(v))
        ax.set_xlabel("layer i (1: nearest the input)")
        ax.set_ylabel(ylabel, fontsize=9)
        if logy:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle("At initialisation, before the first step: the gradient and the rank of the representation by depth")
    seeds = d["seed"].nunique()
    return save(fig, out, "fig_init_depth", provenance(runs, "the fixed probe batch of test images" + (
        f"; line: median, band: range over {seeds} seeds" if seeds > 1 else "")))
