"""Santurkar et al.'s deep linear network (section 3, App. A): loss curves of every normalisation, ICS and the
loss landscape, from results/dln/metrics.parquet."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bnrepro.figures.shared import draw_gpred_vs_eta, draw_ics, draw_landscape
from bnrepro.figures.style import compared, has_metric, legend_with_labels, ordered, palette, provenance, save, setup


def fig_dln_loss(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    d = metrics[(metrics["split"] == "train") & (metrics["metric"] == "loss")].copy()
    d["variant"] = d["variant"].astype(str)
    lrs = sorted(d["lr"].unique(), reverse=True)
    variants = ordered(d["variant"])
    fig, axes = plt.subplots(1, len(lrs), figsize=(5.5 * len(lrs), 4.2), squeeze=False, layout="constrained")
    for ax, lr in zip(axes[0], lrs):
        sel = d[d["lr"] == lr]
        # The band is the range over seeds: an sd band can dip below zero on a log axis.
        sns.lineplot(data=sel, x="step", y="value", hue="variant", hue_order=[v for v in variants
                     if v in set(sel["variant"])], palette=palette(variants), ax=ax, linewidth=1.2,
                     errorbar=("pi", 100) if sel["seed"].nunique() > 1 else None)
        ax.set_yscale("log")
        ax.set_title(f"full-batch GD, lr {lr:g}", fontsize=10)
        ax.set_ylabel("training loss (sum over the batch)")
        legend_with_labels(ax, fontsize=8)
    fig.suptitle("Deep linear network (25 layers of 10×10): ‖W₂₅…W₁x − Ax‖² per normalisation (Santurkar et al. §3)")
    band = f"; line: mean, band: range over {d['seed'].nunique()} seeds" if d["seed"].nunique() > 1 else ""
    return save(fig, out, "fig_dln_loss", provenance(runs, band.removeprefix("; ")))


def standard_vs_bn(metrics: pd.DataFrame) -> pd.DataFrame:
    """The standard network and BN, and any variant the label table lacks (labels.compared)."""
    return metrics[metrics["variant"].astype(str).isin(compared(metrics["variant"].astype(str).unique()))]


def fig_dln_ics(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    return draw_ics(standard_vs_bn(metrics), runs, out, name="fig_dln_ics",
                   title="Deep linear network: internal covariate shift at layers #9 and #17 (Santurkar et al.)")


def fig_dln_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """One figure per learning rate, standard vs BN."""
    paths = []
    for lr in sorted(metrics["lr"].unique(), reverse=True):
        paths += draw_landscape(standard_vs_bn(metrics), runs, out, name=f"fig_dln_landscape_lr{lr:g}", lr=float(lr),
                               log=True, title=f"Deep linear network, lr {lr:g}: loss landscape along the gradient, "
                                               f"η from lr/100 to 30·lr (Santurkar et al. Fig 10)")
    return paths


def fig_dln_lp_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    lr = float(metrics["lr"].max())
    return draw_landscape(metrics, runs, out, name="fig_dln_lp_landscape", lr=lr, log=True,
                         title=f"Deep linear network, lr {lr:g}: loss landscape of every normalisation "
                               f"(Santurkar et al. Fig 13)")


def fig_dln_gpred_vs_eta(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    if not has_metric(metrics, r"^landscape/eta/[^/]+/gpred$"):  # results recorded before the per-step-size metrics
        return []
    lr = float(metrics["lr"].max())
    return draw_gpred_vs_eta(metrics, runs, out, "fig_dln_gpred_vs_eta", lr=lr, log=True,
                            title=f"Deep linear network, lr {lr:g}: gradient change against the step size, "
                                  f"one line per probed step (Santurkar et al. Fig 11)")
