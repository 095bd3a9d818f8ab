"""The pieces several experiments' figures share: training curves, percentile bands of a layer's activations,
and the figures of the in-step probes (internal covariate shift, the loss landscape), each drawn from stored
metrics and named by its caller. An experiment's figure module imports from here and from style.py only."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bnrepro.figures.style import (
    colour,
    label,
    layer_number,
    legend_with_labels,
    ordered,
    palette,
    provenance,
    save,
    seed_band,
    setup,
)

BAND_PAIRS = (("5", "95"), ("15", "85"))  # nested bands, outer to inner, then the median line
SMOOTH_POINTS = 25  # training metrics are stored every 10 steps: a 250-step moving average


def training_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """Test points as evaluated; training points smoothed per run, then thinned for plotting."""
    m = metrics[metrics["split"].isin(["train", "test"]) & metrics["metric"].isin(["acc", "loss"])].copy()
    m = m.sort_values(["run_id", "metric", "split", "step"])
    m["value"] = m["value"].astype("float64")  # stored as float32; smoothing works in float64
    train = m["split"] == "train"
    m.loc[train, "value"] = (
        m[train].groupby(["run_id", "metric"], observed=True)["value"]
        .transform(lambda v: v.rolling(SMOOTH_POINTS, min_periods=1).mean())
    )
    m = m[~train | (m["step"] % 50 == 0)]
    m["split"] = m["split"].astype(str).map({"train": "train (smoothed)", "test": "test"})
    m["variant"] = m["variant"].astype(str)
    return m


def at_shared_lr(metrics: pd.DataFrame, variants: list[str] | None = None) -> pd.DataFrame:
    """The runs at the largest learning rate that every variant (of `variants`, else of all) was run at: a figure
    that compares variants must not average one variant's learning rates into its curve."""
    names = metrics["variant"].astype(str)
    if variants is not None:
        metrics, names = metrics[names.isin(variants)], names[names.isin(variants)]
    lrs = metrics.groupby(names, observed=True)["lr"].agg(lambda v: set(v.unique()))
    shared = set.intersection(*lrs) if len(lrs) else set()
    if not shared:
        raise ValueError(f"no learning rate that every variant ran at: {dict(lrs.map(sorted))}")
    return metrics[metrics["lr"] == max(shared)]


def percentiles_long(metrics: pd.DataFrame) -> pd.DataFrame:
    p = metrics[metrics["split"] == "probe"].copy()
    parts = p["metric"].astype(str).str.extract(r"^act/(?P<layer>[^/]+)/(?P<view>[^/]+)/p(?P<q>[\d.]+)$")
    p = pd.concat([p, parts], axis=1).dropna(subset=["layer"])
    p["percentile"] = p["q"].map(lambda q: f"{float(q):g}th")
    p["variant"] = p["variant"].astype(str)
    return p


def _bands(ax, d: pd.DataFrame, color: str) -> None:
    """The paper draws each layer's activation distribution over training; here as nested percentile bands."""
    wide = d.groupby(["step", "q"], observed=True)["value"].mean().unstack("q").sort_index()
    for (lo, hi), alpha in zip([p for p in BAND_PAIRS if set(p) <= set(wide.columns)], (0.25, 0.45)):
        ax.fill_between(wide.index, wide[lo], wide[hi], color=color, alpha=alpha, linewidth=0,
                        label=f"{lo}–{hi}th")
    if "50" in wide.columns:
        ax.plot(wide.index, wide["50"], color=color, linewidth=1.2, label="50th")


def median_and_range(ax, grouped, color: str, label: str | None = None, linewidth: float = 1.2) -> None:
    """A median line over the groups' x (step, layer, ...) with its min–max band: `grouped` is a pandas groupby of
    values (over seeds, or runs)."""
    ax.fill_between(grouped.min().index, grouped.min(), grouped.max(), color=color, alpha=0.25, linewidth=0)
    ax.plot(grouped.median().index, grouped.median(), color=color, linewidth=linewidth, label=label)


def layer_percentiles(metrics: pd.DataFrame, view: str = "pooled") -> tuple[pd.DataFrame, list[str]]:
    """The probes' percentiles in one view ("pooled" or "unit": one channel), long form, and the probed layers in
    network order."""
    p = percentiles_long(metrics)
    p = p[p["view"] == view]
    return p, sorted(p["layer"].unique(), key=layer_number)


def variant_curves(ax, d: pd.DataFrame, variants: list[str], nseeds: int, title: str, ylabel: str) -> None:
    """One metric over training, a line per variant (mean ± sd over seeds), in a small panel beside layer bands."""
    sns.lineplot(data=d, x="step", y="value", hue="variant", hue_order=variants, palette=palette(variants),
                 errorbar=seed_band(nseeds), ax=ax)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    legend_with_labels(ax, fontsize=7)


def layer_bands(fig, grid, p: pd.DataFrame, layers: list[str], variants: list[str], row: int, col: int,
                what: str = "") -> None:
    """One panel per (layer, variant), from grid[row, col] on: the layer's activation distribution over training."""
    for r, layer in enumerate(layers, start=row):
        for c, variant in enumerate(variants, start=col):
            # Each network on its own scale: without BN the deep layers' outputs are orders of magnitude smaller.
            ax = fig.add_subplot(grid[r, c])
            _bands(ax, p[(p["layer"] == layer) & (p["variant"] == variant)], colour(variant))
            ax.set_title(f"{label(variant)} · layer #{layer_number(layer)}{what}", fontsize=10)
            if c == col:
                ax.set_ylabel("output before ReLU")
                ax.legend(fontsize=6, loc="upper left")


STATS = {"l2": "ℓ2 difference ‖G − G′‖", "cos": "cos angle (G, G′)"}


def ics_long(metrics: pd.DataFrame) -> pd.DataFrame:
    d = metrics[(metrics["split"] == "probe") & metrics["metric"].astype(str).str.startswith("ics/")].copy()
    parts = d["metric"].astype(str).str.split("/", expand=True)
    d["layer"], d["stat"] = parts[1], parts[2]
    d["variant"] = d["variant"].astype(str)
    return d[d["stat"].isin(list(STATS))]


def draw_ics(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, name: str, title: str = "") -> list[Path]:
    """Rows: the l2 difference and the cosine; columns: each learning rate and probed layer; standard vs BN."""
    setup()
    d = ics_long(metrics)
    if d.empty:
        raise ValueError("no ICS metrics (ics/...) in these results: run with trainer.ics_every > 0")
    layers = sorted(d["layer"].unique(), key=layer_number)
    lrs = sorted(d["lr"].unique(), reverse=True)
    variants = ordered(d["variant"])
    columns = [(lr, layer) for lr in lrs for layer in layers]
    nseeds = d["seed"].nunique()
    fig, axes = plt.subplots(2, len(columns), figsize=(3.6 * len(columns), 6.2), squeeze=False, layout="constrained")
    for c, (lr, layer) in enumerate(columns):
        for r, stat in enumerate(STATS):
            ax = axes[r, c]
            sel = d[(d["lr"] == lr) & (d["layer"] == layer) & (d["stat"] == stat)]
            # The band is the range over seeds: an sd band dips below zero on the l2 panel's log axis.
            sns.lineplot(data=sel, x="step", y="value", hue="variant", hue_order=variants, palette=palette(variants),
                         errorbar=("pi", 100) if nseeds > 1 else None, ax=ax, linewidth=1)
            ax.set_title(f"lr {lr:g} · layer #{layer_number(layer)}", fontsize=10)
            ax.set_ylabel(STATS[stat] if c == 0 else "")
            if stat == "l2":
                ax.set_yscale("log")
            if r == 0 and c == 0:
                legend_with_labels(ax, fontsize=7)
            elif ax.get_legend():
                ax.get_legend().remove()
    fig.suptitle(title or "Internal covariate shift: a layer's gradient before (G) and after (G′) the earlier "
                          "layers' update (Santurkar et al. Fig 3)")
    band = f"; line: mean, band: range over {nseeds} seeds" if nseeds > 1 else ""
    return save(fig, out, name, provenance(runs, "same batch for G and G′" + band))


PANELS = [  # (title, y label, lower metric, upper metric)
    ("loss landscape", "L(w − ηg), min to max over η", "loss_min", "loss_max"),
    ("gradient predictiveness", "‖∇L(w) − ∇L(w − ηg)‖, min to max over η", "gpred_min", "gpred_max"),
    ("effective β-smoothness", "max over η of ‖∇L(w) − ∇L(w − ηg)‖ / ‖ηg‖", "beta_min", "beta"),
]


PAPER_LOG = (True, False, False)  # Fig 4 and Fig 12: the loss on a log axis, the other two linear


ETA_METRIC = re.compile(r"^landscape/eta/(?P<eta>[^/]+)/gpred$")


def landscape_wide(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, lr, step): each landscape quantity averaged over seeds."""
    d = metrics[(metrics["split"] == "probe") & metrics["metric"].astype(str).str.startswith("landscape/")].copy()
    d["quantity"] = d["metric"].astype(str).str.removeprefix("landscape/")
    d["variant"] = d["variant"].astype(str)
    return d.pivot_table(index=["variant", "lr", "step"], columns="quantity", values="value", aggfunc="mean",
                         observed=True).reset_index()


def draw_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, name: str,
                  lr: float | None = None, variants: list[str] | None = None, title: str = "",
                  log: bool | tuple[bool, bool, bool] = PAPER_LOG) -> list[Path]:
    """Three panels vs step, one shaded min-max band per variant; `log`: a log y axis, for all panels or per panel
    (the paper's Fig 4 logs the loss only; its deep-linear-network figures log all three)."""
    setup()
    w = landscape_wide(metrics)
    if w.empty:
        raise ValueError("no landscape metrics (landscape/...) in these results: run with trainer.landscape_every > 0")
    lr = lr if lr is not None else float(w["lr"].max())
    w = w[np.isclose(w["lr"], lr)]
    present = set(w["variant"])
    variants = [v for v in variants if v in present] if variants else ordered(present)
    logs = (log,) * 3 if isinstance(log, bool) else log
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    for ax, (panel, ylabel, lo, hi), logy in zip(axes, PANELS, logs):
        for v in variants:
            d = w[w["variant"] == v].sort_values("step")
            ax.fill_between(d["step"], d[lo], d[hi], color=colour(v), alpha=0.35, linewidth=0, label=label(v))
            ax.plot(d["step"], d[hi], color=colour(v), linewidth=0.6)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel, fontsize=9)
        if logy:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(title or f"Loss landscape along the gradient, lr {lr:g}: shaded between the min and the max over "
                          f"the step sizes η (Santurkar et al. Fig 4)")
    seeds = metrics["seed"].nunique()
    return save(fig, out, name, provenance(runs, "same batch at every η" + (
        f"; band edges averaged over the {seeds} seeds" if seeds > 1 else "")))


def gpred_by_eta(metrics: pd.DataFrame) -> pd.DataFrame:
    """The gradient change at each step size: columns variant, lr, seed, step, eta, value."""
    d = metrics[(metrics["split"] == "probe")]
    found = d["metric"].astype(str).str.extract(ETA_METRIC)
    d = d.assign(eta=pd.to_numeric(found["eta"]), variant=d["variant"].astype(str)).dropna(subset=["eta"])
    return d[["variant", "lr", "seed", "step", "eta", "value"]]


def draw_gpred_vs_eta(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, name: str, lr: float | None = None,
                     variants: tuple[str, ...] = ("none", "batch"), log: bool = False, title: str = "") -> list[Path]:
    """Santurkar Fig 11: ‖∇L(w) − ∇L(w − ηg)‖ against η, one line per probed step, coloured early to late; seed 0."""
    setup()
    d = gpred_by_eta(metrics)
    if d.empty:
        raise ValueError("no per-step-size landscape metrics (landscape/eta/<eta>/gpred) in these results")
    lr = lr if lr is not None else float(d["lr"].max())
    seed = int(d["seed"].min())
    d = d[np.isclose(d["lr"], lr) & (d["seed"] == seed)]
    variants = [v for v in variants if v in set(d["variant"])]
    fig, axes = plt.subplots(1, len(variants), figsize=(5.5 * len(variants), 4.2), squeeze=False, sharey=True,
                             layout="constrained")
    cmap = plt.get_cmap("coolwarm")
    steps = sorted(d["step"].unique())
    norm = plt.Normalize(min(steps), max(steps))
    for ax, v in zip(axes[0], variants):
        for step, g in d[d["variant"] == v].groupby("step"):
            g = g.sort_values("eta")
            ax.plot(g["eta"], g["value"], color=cmap(norm(step)), linewidth=0.7, alpha=0.8)
        ax.set_title(label(v), fontsize=10)
        ax.set_xlabel("step size η")
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
    axes[0, 0].set_ylabel("‖∇L(w) − ∇L(w − ηg)‖")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[0, -1], label="training step")
    fig.suptitle(title or f"Gradient change against the step size, lr {lr:g}: one line per probed step "
                          f"(Santurkar et al. Fig 11)")
    return save(fig, out, name, provenance(runs, f"seed {seed}; same batch at every η"))
