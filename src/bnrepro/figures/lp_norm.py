"""lp-normalisation vs BN on VGG (Santurkar et al. Fig 6): training curves and layer #11's activation distribution,
from results/lp_norm/metrics.parquet."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bnrepro.figures.shared import (
    at_shared_lr,
    draw_landscape,
    layer_bands,
    layer_percentiles,
    training_curves,
    variant_curves,
)
from bnrepro.figures.style import has_metric, ordered, provenance, save, setup


def fig_lp_norm(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    metrics = at_shared_lr(metrics)
    d = training_curves(metrics)
    variants = ordered(d["variant"])
    p, layers = layer_percentiles(metrics, "pooled")
    nseeds = d["seed"].nunique()
    columns = max(3, len(variants)) if layers else 3  # the histogram rows have a panel per variant
    fig = plt.figure(figsize=(4.0 * columns, 3.4 * (1 + len(layers))), layout="constrained")
    grid = fig.add_gridspec(1 + len(layers), columns)
    for c, (split, metric) in enumerate([("train (smoothed)", "acc"), ("test", "acc"), ("train (smoothed)", "loss")]):
        variant_curves(fig.add_subplot(grid[0, c]), d[(d["split"] == split) & (d["metric"] == metric)], variants,
                       nseeds, f"{split.split(' ')[0]} {'accuracy' if metric == 'acc' else 'loss'}", metric)
    layer_bands(fig, grid, p, layers, variants, row=1, col=0)
    lr = ", ".join(f"{v:g}" for v in sorted(metrics["lr"].unique()))
    figure = "Fig 6" if layers else "Fig 5a"
    fig.suptitle(f"VGG on CIFAR-10, lr {lr}: BN vs lp-normalisation (Santurkar et al. {figure})")
    return save(fig, out, "fig_lp_norm",
                provenance(runs, "bands: pooled percentiles on a fixed test batch" if layers else "mean ± sd"))


def fig_lp_norm_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    if not has_metric(metrics, "^landscape/"):  # earlier results had no landscape
        return []
    return draw_landscape(metrics, runs, out, name="fig_lp_norm_landscape",
                         title="VGG on CIFAR-10: loss landscape along the gradient of every normalisation, "
                               "η from lr/2 to 4·lr (Santurkar et al. Fig 12)")
