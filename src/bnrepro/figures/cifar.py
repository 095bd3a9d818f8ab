"""Santurkar et al. 2018, Figs 1-2 (the article's Diagram 6), from results/cifar_bn/metrics.parquet."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bnrepro.figures.mnist import percentiles_long, training_curves
from bnrepro.figures.style import PALETTE, label, legend_with_labels, provenance, save, seed_band, setup

VARIANTS = ["none", "batch", "noisy_batch"]


def _acc(metrics: pd.DataFrame) -> pd.DataFrame:
    d = training_curves(metrics)
    d = d[d["metric"] == "acc"].copy()
    d["lr"] = d["lr"].map(lambda v: f"lr {v:g}")
    return d


def fig1_training(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """Training and test accuracy, standard vs BN, at each learning rate (the paper's Fig 1)."""
    setup()
    d = _acc(metrics[metrics["variant"].astype(str).isin(["none", "batch"])])
    nseeds = d["seed"].nunique()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, layout="constrained")
    for ax, split in zip(axes, ["train (smoothed)", "test"]):
        sns.lineplot(data=d[d["split"] == split], x="step", y="value", hue="variant", hue_order=["none", "batch"],
                     palette=PALETTE, style="lr", errorbar=seed_band(nseeds), ax=ax)
        ax.set_title(f"{split.split(' ')[0]} accuracy")
        ax.set_ylabel("accuracy")
        legend_with_labels(ax, fontsize=8)
    fig.suptitle("VGG on CIFAR-10: standard vs BN at two learning rates (Santurkar et al. Fig 1)")
    return save(fig, out, "fig_santurkar1_training", provenance(runs))


def _bands(ax, d: pd.DataFrame, color: str) -> None:
    """The paper draws each layer's activation distribution over training; here as nested percentile bands."""
    wide = d.groupby(["step", "q"], observed=True)["value"].mean().unstack("q").sort_index()
    qs = sorted(wide.columns, key=float)
    for lo, hi, alpha in zip(qs, reversed(qs), (0.2, 0.35, 0.5)):
        if float(lo) >= float(hi):
            break
        ax.fill_between(wide.index, wide[lo], wide[hi], color=color, alpha=alpha, linewidth=0,
                        label=f"{float(lo):g}–{float(hi):g}th")
    mid = qs[len(qs) // 2]
    ax.plot(wide.index, wide[mid], color=color, linewidth=1.2, label=f"{float(mid):g}th")


def pooled_percentiles(metrics: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The probes' pooled percentiles (long form), and the probed layers in network order."""
    p = percentiles_long(metrics)
    p = p[p["view"] == "pooled"]
    return p, sorted(p["layer"].unique(), key=lambda s: int(s.removeprefix("layer")))


def variant_curves(ax, d: pd.DataFrame, variants: list[str], nseeds: int, title: str, ylabel: str) -> None:
    """One metric over training, a line per variant (mean ± sd over seeds), in a small panel beside layer bands."""
    sns.lineplot(data=d, x="step", y="value", hue="variant", hue_order=variants, palette=PALETTE,
                 errorbar=seed_band(nseeds), ax=ax)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    legend_with_labels(ax, fontsize=7)


def layer_bands(fig, grid, p: pd.DataFrame, layers: list[str], variants: list[str], row: int, col: int) -> None:
    """One panel per (layer, variant), from grid[row, col] on: the layer's activation distribution over training."""
    for r, layer in enumerate(layers, start=row):
        for c, variant in enumerate(variants, start=col):
            # Each network on its own scale: without BN the deep layers' outputs are orders of magnitude smaller.
            ax = fig.add_subplot(grid[r, c])
            _bands(ax, p[(p["layer"] == layer) & (p["variant"] == variant)], PALETTE[variant])
            ax.set_title(f"{label(variant)} · layer #{layer.removeprefix('layer')}", fontsize=10)
            if c == col:
                ax.set_ylabel("output before ReLU")
                ax.legend(fontsize=6, loc="upper left")


def fig2_noisy_bn(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, lr: float | None = None) -> list[Path]:
    """Accuracy of standard, BN and noisy BN, beside the activation distributions of the probed layers."""
    setup()
    lr = lr if lr is not None else float(metrics["lr"].min())
    m = metrics[metrics["lr"] == lr]
    d = _acc(m)
    p, layers = pooled_percentiles(m)
    variants = [v for v in VARIANTS if v in set(d["variant"])]
    nseeds = d["seed"].nunique()
    fig = plt.figure(figsize=(4.2 * (1 + len(variants)), 3.0 * max(2, len(layers))), layout="constrained")
    grid = fig.add_gridspec(max(2, len(layers)), 1 + len(variants))
    for r, split in enumerate(["train (smoothed)", "test"]):
        variant_curves(fig.add_subplot(grid[r, 0]), d[d["split"] == split], variants, nseeds,
                       f"{split.split(' ')[0]} accuracy", "accuracy")
    layer_bands(fig, grid, p, layers, variants, row=0, col=1)
    fig.suptitle(f"VGG on CIFAR-10, lr {lr:g}: standard, BN and noisy BN (Santurkar et al. Fig 2)")
    return save(fig, out, "fig_santurkar2_noisy_bn", provenance(runs, "bands: pooled percentiles on a fixed test batch"))


def draw(results_dir: Path) -> list[Path]:
    results_dir = Path(results_dir)
    metrics = pd.read_parquet(results_dir / "metrics.parquet")
    runs = pd.read_csv(results_dir / "runs.csv")
    return fig1_training(metrics, runs, results_dir) + fig2_noisy_bn(metrics, runs, results_dir)
