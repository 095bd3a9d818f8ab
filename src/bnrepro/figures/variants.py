"""Figures that compare variants of one network (where the norm sits, which norm, with or without its scale and
shift) from stored metrics: the training curves, the last hidden layer's activation input, and gamma/beta."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bnrepro.figures.shared import at_shared_lr, percentiles_long, training_curves
from bnrepro.figures.style import (
    colour,
    data_label,
    has_metric,
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

# The network each experiment compares variants of, as far as the experiment's config fixes it (cifar_bn_cpu's runs
# are also made at other widths). The steps and the variants drawn come from the stored runs.
NETWORKS = {
    "mnist_norm_position": "3 sigmoid hidden layers",
    "mnist_layernorm": "3 sigmoid hidden layers",
    "mnist_affine": "3 sigmoid hidden layers",
    "cifar_norm_variants": "VGG at 1/8 width",
    "cifar_population": "VGG at 1/8 width",
    "mnist_population": "3 sigmoid hidden layers",
    "cifar_bn_cpu": "VGG",
}


def _title(runs: pd.DataFrame, variants: list[str], nseeds: int, lrs: list[float]) -> str:
    experiment = str(runs["experiment"].iloc[0]) if "experiment" in runs else ""
    steps = runs["max_steps"].unique() if "max_steps" in runs else []
    what = NETWORKS.get(experiment, experiment) + (f", {int(steps[0]):,} steps" if len(steps) == 1 else "")
    return (f"{data_label(runs)}, {what}: {', '.join(label(v) for v in variants)}"
            + (f", lr {lrs[0]:g}" if len(lrs) == 1 else "")
            + (f" (mean ± sd over {nseeds} seeds)" if nseeds > 1 else ""))


def fig_variants(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path,
                 variants: list[str] | None = None) -> list[Path]:
    """Top: test accuracy and training loss per variant (of `variants`, else all), at the learning rate they
    share. Bottom, when probed: the last hidden layer's activation input (15th/50th/85th percentiles pooled over
    its units), one panel per variant."""
    setup()
    several_lrs = metrics["lr"].nunique() > 1  # then the title says which one is drawn
    metrics = at_shared_lr(metrics, variants)
    d = training_curves(metrics)
    variants = ordered(d["variant"])
    nseeds = d["seed"].nunique()
    p = percentiles_long(metrics)
    p = p[p["view"] == "pooled"]
    rows = 2 if len(p) else 1
    fig = plt.figure(figsize=(4 * max(2, len(variants)), 4 * rows))
    grid = fig.add_gridspec(rows, 2 * len(variants))
    half = len(variants)
    for k, (metric, split, ylabel) in enumerate((("acc", "test", "test accuracy"),
                                                 ("loss", "train (smoothed)", "training loss"))):
        ax = fig.add_subplot(grid[0, k * half:(k + 1) * half])
        dm = d[(d["metric"] == metric) & (d["split"] == split)]
        sns.lineplot(data=dm, x="step", y="value", hue="variant", hue_order=variants, palette=palette(variants),
                     errorbar=seed_band(nseeds), ax=ax)
        if metric == "acc":
            late = dm[dm["step"] >= dm["step"].max() * 0.1]["value"]
            ax.set_ylim(max(0.0, min(0.7, late.quantile(0.02)) - 0.01), 1.0)
        else:
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel)
        legend_with_labels(ax, fontsize=8)
    if rows == 2:
        last = max(p["layer"].unique(), key=layer_number)
        share = None
        for c, variant in enumerate(variants):
            ax = fig.add_subplot(grid[1, 2 * c:2 * c + 2], sharey=share)
            share = share or ax
            dv = p[(p["layer"] == last) & (p["variant"] == variant)]
            sns.lineplot(data=dv, x="step", y="value", hue="percentile", palette="crest", errorbar=seed_band(nseeds),
                         ax=ax, legend=c == 0)
            ax.set_title(f"{label(variant)}: layer #{layer_number(last)}'s activation input", fontsize=10)
            ax.set_ylabel("activation input (pooled percentiles)" if c == 0 else "")
    fig.suptitle(_title(runs, variants, nseeds, sorted(metrics["lr"].unique()) if several_lrs else []))
    fig.tight_layout()
    return save(fig, out, "fig_variants", provenance(runs, "probe: fixed test batch of 256"))


def fig_norm_position(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """fig_variants for the article's LayerNorm and BN-position statements alone, where the results also hold other
    variants (cifar_bn_cpu's noisy BN)."""
    return fig_variants(metrics, runs, out, variants=["none", "batch", "batch_post", "layer"])


def fig_affine_trajectories(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """gamma and beta of every normalised layer over training: the 15th-85th percentile band over its units and
    the median (mean over seeds), and unit #0 in each seed."""
    if not has_metric(metrics, r"^gamma/"):
        return []
    setup()
    g = metrics[metrics["split"] == "probe"].copy()
    parts = g["metric"].astype(str).str.extract(r"^(?P<param>gamma|beta)/(?P<layer>layer\d+)/(?P<stat>[^/]+)$")
    g = pd.concat([g, parts], axis=1).dropna(subset=["param"])
    g["value"] = g["value"].astype("float64")
    layers = sorted(g["layer"].unique(), key=layer_number)
    fig, axes = plt.subplots(2, len(layers), figsize=(4.2 * len(layers), 7), squeeze=False)
    for r, param in enumerate(("gamma", "beta")):
        for c, layer in enumerate(layers):
            ax = axes[r, c]
            d = g[(g["param"] == param) & (g["layer"] == layer)]
            wide = d.groupby(["step", "stat"])["value"].mean().unstack("stat").sort_index()
            if {"p15", "p85"} <= set(wide.columns):
                ax.fill_between(wide.index, wide["p15"], wide["p85"], color=colour("batch"), alpha=0.3,
                                linewidth=0, label="15th–85th pct over units")
            if "p50" in wide.columns:
                ax.plot(wide.index, wide["p50"], color=colour("batch"), label="median unit")
            for seed, ds in d[d["stat"] == "unit"].groupby("seed"):
                ax.plot(ds["step"], ds["value"], color="0.3", linewidth=0.7, alpha=0.8,
                        label="unit #0 (one line per seed)" if seed == d["seed"].min() else None)
            ax.axhline(1.0 if param == "gamma" else 0.0, color="0.6", linestyle=":", linewidth=1)
            ax.set_title(f"{'γ' if param == 'gamma' else 'β'}, layer #{layer_number(layer)}", fontsize=10)
            if c == 0:
                ax.set_ylabel("γ (scale)" if param == "gamma" else "β (shift)")
                ax.legend(fontsize=7)
    fig.suptitle(f"{data_label(runs)}: BN's learned scale γ and shift β over training (starting at 1 and 0)")
    fig.tight_layout()
    return save(fig, out, "fig_affine_trajectories", provenance(runs))
