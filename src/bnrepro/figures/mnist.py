"""The article's Figures 2-4 (Ioffe & Szegedy Fig 1) from results/mnist_bn/metrics.parquet."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bnrepro.figures.shared import percentiles_long, training_curves
from bnrepro.figures.style import (
    STANDARD_VS_BN,
    compared,
    data_label,
    label,
    layer_number,
    legend_with_labels,
    palette,
    provenance,
    save,
    seed_band,
    setup,
)

PERCENTILE_NOTE = ("probe: fixed test batch; typical unit: one line per seed (a different neuron in each); "
                   "pooled: mean ± sd")


def fig2_training_curves(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    d = training_curves(metrics)
    variants = compared(d["variant"])
    d = d[d["variant"].isin(variants)]
    nseeds = d["seed"].nunique()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, title in ((axes[0], "acc", "accuracy"), (axes[1], "loss", "cross-entropy loss")):
        dm = d[d["metric"] == metric]
        sns.lineplot(data=dm, x="step", y="value", hue="variant", hue_order=variants,
                     palette=palette(variants), style="split", style_order=["test", "train (smoothed)"],
                     errorbar=seed_band(nseeds), ax=ax)
        ax.set_title(title)
        ax.set_ylabel(title)
    acc = d[d["metric"] == "acc"]["value"]
    # The paper's 0.7-1.0 view, widened to every curve: the network without BN starts far below it.
    axes[0].set_ylim(max(0.0, min(0.7, acc.min()) - 0.01), 1.0)
    axes[1].set_yscale("log")
    for ax in axes:
        legend_with_labels(ax, fontsize=8)
    drawn = "with and without BN" if variants == STANDARD_VS_BN else ", ".join(label(v) for v in variants)
    fig.suptitle(f"{data_label(runs)}, 3 sigmoid hidden layers: test and training curves {drawn}"
                 + (f" (mean ± sd over {nseeds} seeds)" if nseeds > 1 else ""))
    return save(fig, out, "fig2_training_curves", provenance(runs))


def _percentile_panel(ax, d: pd.DataFrame, nseeds: int, title: str, first: bool, per_seed: bool = False) -> None:
    """per_seed: one line per seed, for the unit view: unit #0 is a different neuron in each seed, so a band
    across seeds would mix neurons. Otherwise the mean with a ±1 sd band over seeds."""
    order = sorted(d["percentile"].unique(), key=lambda s: float(s[:-2]))
    spread = {"units": "seed", "estimator": None, "linewidth": 0.8} if per_seed and nseeds > 1 else \
        {"errorbar": seed_band(nseeds)}
    sns.lineplot(data=d, x="step", y="value", hue="percentile", hue_order=order,
                 palette="viridis", ax=ax, legend=first, **spread)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("sigmoid input" if first else "")
    if first:
        ax.legend(title="percentile", fontsize=7, title_fontsize=7, loc="best")


def fig3_last_layer_percentiles(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    p = percentiles_long(metrics)
    last = sorted(p["layer"].unique(), key=layer_number)[-1]
    p = p[p["layer"] == last]
    nseeds, unit = p["seed"].nunique(), probe_unit(runs)
    variants = compared(p["variant"])
    views = [("unit", f"typical unit{'' if unit is None else f' (#{unit})'}, a line per seed"),
             ("pooled", "all units pooled")]
    fig, axes = plt.subplots(2, len(variants), figsize=(5 * len(variants), 7), sharex=True, squeeze=False)
    for r, (view, vtitle) in enumerate(views):
        for c, variant in enumerate(variants):
            d = p[(p["view"] == view) & (p["variant"] == variant)]
            _percentile_panel(axes[r, c], d, nseeds, f"{label(variant)} · {vtitle}", first=c == 0,
                              per_seed=view == "unit")
        lo = p[p["view"] == view]["value"].min()
        hi = p[p["view"] == view]["value"].max()
        for ax in axes[r]:
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))  # same scale within a row
    fig.suptitle(f"Last hidden layer ({last}): 15/50/85th percentiles of the sigmoid input over training")
    return save(fig, out, "fig3_last_layer_percentiles", provenance(runs, PERCENTILE_NOTE))


def fig4_hidden_layers(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    p = percentiles_long(metrics)
    layers = sorted(p["layer"].unique(), key=layer_number)
    nseeds = p["seed"].nunique()
    cols = [(v, view) for view in ("unit", "pooled") for v in compared(p["variant"])]
    fig, axes = plt.subplots(len(layers), len(cols), figsize=(4 * len(cols), 3.1 * len(layers)),
                             sharex=True, squeeze=False)
    for r, layer in enumerate(layers):
        for c, (variant, view) in enumerate(cols):
            d = p[(p["layer"] == layer) & (p["variant"] == variant) & (p["view"] == view)]
            vname = "typical unit, per seed" if view == "unit" else "pooled"
            _percentile_panel(axes[r, c], d, nseeds, f"{layer} · {label(variant)} · {vname}", first=c == 0,
                              per_seed=view == "unit")
        row = p[p["layer"] == layer]["value"]
        lo, hi = row.min(), row.max()
        for ax in axes[r]:  # one scale per row: with and without BN compared by eye
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    fig.suptitle("Every hidden layer: 15/50/85th percentiles of the sigmoid input over training")
    return save(fig, out, "fig4_hidden_layers", provenance(runs, PERCENTILE_NOTE))


def probe_unit(runs: pd.DataFrame) -> int | None:
    """The unit the runs' "typical unit" view followed (run.json's probe_unit)."""
    return int(runs["probe_unit"].dropna().iloc[0]) if runs.get("probe_unit", pd.Series()).notna().any() else None
