"""The loss landscape along the gradient (Santurkar et al. Fig 4; the article's Fig 8), from stored metrics."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bnrepro.figures.style import ALL_VARIANTS, PALETTE, label, provenance, save, setup

PANELS = [  # (title, lower metric, upper metric)
    ("loss landscape: range of L(w − ηg)", "loss_min", "loss_max"),
    ("gradient predictiveness: range of ‖∇L(w) − ∇L(w − ηg)‖", "gpred_min", "gpred_max"),
    ("effective β-smoothness: ‖∇L(w) − ∇L(w − ηg)‖ / ‖ηg‖", "beta_min", "beta"),
]


def landscape_wide(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, lr, step): each landscape quantity averaged over seeds."""
    d = metrics[(metrics["split"] == "probe") & metrics["metric"].astype(str).str.startswith("landscape/")].copy()
    d["quantity"] = d["metric"].astype(str).str.removeprefix("landscape/")
    d["variant"] = d["variant"].astype(str)
    return d.pivot_table(index=["variant", "lr", "step"], columns="quantity", values="value", aggfunc="mean",
                         observed=True).reset_index()


def fig_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, name: str = "fig_landscape",
                  lr: float | None = None, variants: list[str] | None = None, title: str = "",
                  log: bool = False) -> list[Path]:
    """Three panels vs step, one shaded min-max band per variant; `log` for quantities spanning decades."""
    setup()
    w = landscape_wide(metrics)
    if w.empty:
        raise ValueError("no landscape metrics (landscape/...) in these results: run with trainer.landscape_every > 0")
    lr = lr if lr is not None else float(w["lr"].max())
    w = w[w["lr"] == lr]
    present = set(w["variant"])
    variants = [v for v in (variants or ALL_VARIANTS) if v in present]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    for ax, (panel, lo, hi) in zip(axes, PANELS):
        for v in variants:
            d = w[w["variant"] == v].sort_values("step")
            ax.fill_between(d["step"], d[lo], d[hi], color=PALETTE[v], alpha=0.35, linewidth=0, label=label(v))
            ax.plot(d["step"], d[hi], color=PALETTE[v], linewidth=0.6)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("step")
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(title or f"Loss landscape along the gradient, lr {lr:g}: shaded between the min and the max over "
                          f"the step sizes η (Santurkar et al. Fig 4)")
    seeds = metrics["seed"].nunique()
    return save(fig, out, name, provenance(runs, "same batch at every η" + (
        f"; band edges averaged over the {seeds} seeds" if seeds > 1 else "")))


def draw(results_dir: Path) -> list[Path]:
    results_dir = Path(results_dir)
    metrics = pd.read_parquet(results_dir / "metrics.parquet")
    runs = pd.read_csv(results_dir / "runs.csv")
    return fig_landscape(metrics, runs, results_dir)
