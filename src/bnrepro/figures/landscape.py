"""The loss landscape along the gradient (Santurkar et al. Figs 4, 10, 12, 13; the article's Fig 8) and the gradient
change against the step size (Fig 11), from stored metrics."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bnrepro.figures.style import ALL_VARIANTS, PALETTE, has_metric, label, provenance, save, setup

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


def fig_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, name: str = "fig_landscape",
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
    variants = [v for v in (variants or ALL_VARIANTS) if v in present]
    logs = (log,) * 3 if isinstance(log, bool) else log
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    for ax, (panel, ylabel, lo, hi), logy in zip(axes, PANELS, logs):
        for v in variants:
            d = w[w["variant"] == v].sort_values("step")
            ax.fill_between(d["step"], d[lo], d[hi], color=PALETTE[v], alpha=0.35, linewidth=0, label=label(v))
            ax.plot(d["step"], d[hi], color=PALETTE[v], linewidth=0.6)
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


def fig_gpred_vs_eta(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, name: str, lr: float | None = None,
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


def draw(results_dir: Path) -> list[Path]:
    results_dir = Path(results_dir)
    metrics = pd.read_parquet(results_dir / "metrics.parquet")
    runs = pd.read_csv(results_dir / "runs.csv")
    paths = fig_landscape(metrics, runs, results_dir)
    if has_metric(metrics, ETA_METRIC.pattern):  # results recorded before the per-step-size metrics: bands only
        paths += fig_gpred_vs_eta(metrics, runs, results_dir, "fig_santurkar11_gpred_vs_eta")
    return paths
