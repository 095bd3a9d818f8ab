"""Santurkar et al. 2018, Figs 1-2 (the article's Diagram 6), from results/cifar_bn/metrics.parquet."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bnrepro.figures.shared import layer_bands, layer_percentiles, training_curves, variant_curves
from bnrepro.figures.style import (
    colour,
    compared,
    has_metric,
    label,
    layer_number,
    legend_with_labels,
    palette,
    provenance,
    save,
    seed_band,
    setup,
)

VARIANTS = ["none", "batch", "noisy_batch", "noisy_batch_channel"]


def _acc(metrics: pd.DataFrame) -> pd.DataFrame:
    d = training_curves(metrics)
    d = d[d["metric"] == "acc"].copy()
    d["lr"] = d["lr"].map(lambda v: f"lr {v:g}")
    return d


def fig_santurkar1_training(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """Training and test accuracy, standard vs BN, at each learning rate (the paper's Fig 1)."""
    setup()
    variants = compared(metrics["variant"].astype(str).unique())
    d = _acc(metrics[metrics["variant"].astype(str).isin(variants)])
    nseeds = d["seed"].nunique()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, layout="constrained")
    for ax, split in zip(axes, ["train (smoothed)", "test"]):
        sns.lineplot(data=d[d["split"] == split], x="step", y="value", hue="variant", hue_order=variants,
                     palette=palette(variants), style="lr", errorbar=seed_band(nseeds), ax=ax)
        ax.set_title(f"{split.split(' ')[0]} accuracy")
        ax.set_ylabel("accuracy")
        legend_with_labels(ax, fontsize=8)
    fig.suptitle("VGG on CIFAR-10: standard vs BN at two learning rates (Santurkar et al. Fig 1)")
    return save(fig, out, "fig_santurkar1_training", provenance(runs))




FIG2_LAYERS = ["layer2", "layer9", "layer13"]  # the paper's Fig 2 and Fig 8 layers
FIG1C_LAYERS = ["layer3", "layer11"]


def _noisy_bn(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, view: str = "unit",
                  lr: float | None = None) -> list[Path]:
    """Accuracy of standard, BN and noisy BN, beside the activation distributions of the probed layers, for one
    channel (view="unit": noisy BN draws its noise per channel; seed 0, since
    channel #0 is a different feature in each seed) or pooled over channels (mean over seeds)."""
    setup()
    lr = lr if lr is not None else float(metrics["lr"].min())
    m = metrics[metrics["lr"] == lr]
    d = _acc(m)
    p, layers = layer_percentiles(m, view)
    layers = [layer for layer in FIG2_LAYERS if layer in layers] or layers
    seed = int(p["seed"].min()) if len(p) else 0
    if view == "unit":
        p = p[p["seed"] == seed]
    variants = [v for v in VARIANTS if v in set(d["variant"])]
    nseeds = d["seed"].nunique()
    fig = plt.figure(figsize=(4.2 * (1 + len(variants)), 3.0 * max(2, len(layers))), layout="constrained")
    grid = fig.add_gridspec(max(2, len(layers)), 1 + len(variants))
    for r, split in enumerate(["train (smoothed)", "test"]):
        variant_curves(fig.add_subplot(grid[r, 0]), d[d["split"] == split], variants, nseeds,
                       f"{split.split(' ')[0]} accuracy", "accuracy")
    what = ", channel #0" if view == "unit" else ", pooled"
    layer_bands(fig, grid, p, layers, variants, row=0, col=1, what=what)
    name, extra = (("fig_santurkar2_noisy_bn", f"bands: channel #0 on a fixed test batch, seed {seed}")
                   if view == "unit" else ("fig_santurkar2_noisy_bn_pooled",
                                           "bands: all channels pooled on a fixed test batch, mean over seeds"))
    fig.suptitle(f"VGG on CIFAR-10, lr {lr:g}: standard, BN and noisy BN (Santurkar et al. Fig 2), "
                 f"{'one channel' if view == 'unit' else 'all channels pooled'}")
    return save(fig, out, name, provenance(runs, extra))


def quantile_histogram(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A histogram from stored percentiles: between neighbouring percentiles q_i < q_j at values x_i < x_j lie
    (q_j - q_i)% of the values, so the density there is (q_j - q_i) / 100 / (x_j - x_i). Returns the edges and the
    densities (one fewer)."""
    qs = np.array(sorted(values.index, key=float), dtype=object)
    x = values[qs].to_numpy(dtype=float)
    p = np.array([float(q) for q in qs]) / 100.0
    width = np.maximum(np.diff(x), 1e-6 * max(x[-1] - x[0], 1e-12))  # ties: a narrow, finite bar
    return x, np.diff(p) / width


def fig_santurkar1c_histograms(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, lr: float = 0.1,
                     n_steps: int = 8) -> list[Path]:
    """One channel's activation distribution at a few steps of training, as offset histograms (the paper's
    TensorBoard histograms), layers #3 and #11, standard vs BN."""
    if not has_metric(metrics, "/unit/p1$"):  # the percentiles a histogram needs (results before them have 5 only)
        return []
    setup()
    m = metrics[np.isclose(metrics["lr"], lr)]
    p, layers = layer_percentiles(m, "unit")
    layers = [layer for layer in FIG1C_LAYERS if layer in layers] or layers[:2]
    seed = int(p["seed"].min())
    p = p[p["seed"] == seed]
    variants = compared(p["variant"].unique())
    steps = sorted(p["step"].unique())
    picked = [steps[int(i)] for i in np.linspace(len(steps) // n_steps, len(steps) - 1, n_steps)]
    fig, axes = plt.subplots(len(layers), len(variants), figsize=(5.2 * len(variants), 3.6 * len(layers)),
                             squeeze=False, layout="constrained")
    colors = plt.get_cmap("viridis")
    for r, layer in enumerate(layers):
        for c, variant in enumerate(variants):
            ax = axes[r, c]
            d = p[(p["layer"] == layer) & (p["variant"] == variant)]
            gap = (picked[-1] - picked[0]) / max(1, len(picked) - 1)
            for i, s in enumerate(picked):
                edges, dens = quantile_histogram(d[d["step"] == s].set_index("q")["value"])
                # Each histogram scaled to its own peak (1.3 step gaps): an early, narrow one would flatten the rest.
                y = s + 1.3 * gap * np.append(dens, dens[-1]) / dens.max()
                color = colors(i / max(1, len(picked) - 1))
                ax.fill_between(edges, s, y, step="post", color=color, alpha=0.35, linewidth=0)
                ax.step(edges, y, where="post", color=color, linewidth=0.9)
            ax.set_title(f"{label(variant)} · layer #{layer_number(layer)}, channel #0", fontsize=10)
            ax.set_xlabel("activation before ReLU")
            ax.set_ylabel("training step" if c == 0 else "")
    fig.suptitle(f"VGG on CIFAR-10, lr {lr:g}: one activation's distribution over training (Santurkar et al. Fig 1c)")
    return save(fig, out, "fig_santurkar1c_histograms", provenance(
        runs, f"histograms from the 1st-99th percentiles of channel #0 on a fixed test batch, each scaled to its peak; "
              f"seed {seed}"))


def fig_santurkar8_moments(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, lr: float = 0.1) -> list[Path]:
    """|mu(t+1) - mu(t)| and |var(t+1) - var(t)| between a probed step and the next, one channel and pooled. Where
    the runs stored them, noisy BN's moments under the same noise at both probes are drawn dashed: the layer's output
    moving without the noise's own move, beside the fresh noise's move that Santurkar et al. plot."""
    if not has_metric(metrics, "/dmean$"):
        return []
    setup()
    m = metrics[(metrics["split"] == "probe") & np.isclose(metrics["lr"], lr)]
    parts = m["metric"].astype(str).str.extract(
        r"^act/(?P<layer>[^/]+)/(?P<view>[^/]+)/(?P<stat>dmean|dvar)(?P<same>_same_noise)?$")
    d = pd.concat([m, parts], axis=1).dropna(subset=["stat"])
    d["variant"] = d["variant"].astype(str)
    same = d[d["same"].notna() & d["variant"].str.startswith("noisy")]
    d = d[d["same"].isna()]
    layers = [layer for layer in FIG2_LAYERS if layer in set(d["layer"])] or sorted(set(d["layer"]), key=layer_number)
    columns = [(view, stat) for view in ("unit", "pooled") for stat in ("dmean", "dvar")]
    variants = [v for v in VARIANTS if v in set(d["variant"])]
    nseeds = d["seed"].nunique()
    titles = {"dmean": "|μ(t+1) − μ(t)|", "dvar": "|σ²(t+1) − σ²(t)|"}
    fig, axes = plt.subplots(len(layers), len(columns), figsize=(4.0 * len(columns), 3.0 * len(layers)),
                             squeeze=False, sharex=True, layout="constrained")
    for r, layer in enumerate(layers):
        for c, (view, stat) in enumerate(columns):
            ax = axes[r, c]
            sel = d[(d["layer"] == layer) & (d["view"] == view) & (d["stat"] == stat)]
            sns.lineplot(data=sel, x="step", y="value", hue="variant", hue_order=variants, palette=palette(variants),
                         errorbar=("pi", 100) if nseeds > 1 else None, ax=ax, linewidth=1)
            own = same[(same["layer"] == layer) & (same["view"] == view) & (same["stat"] == stat)]
            for variant, g in own.groupby("variant"):
                mean = g.groupby("step")["value"].mean()
                ax.plot(mean.index, mean.to_numpy(), linestyle="--", linewidth=1, color=colour(variant),
                        label=f"{label(variant)}, same noise at both probes")
            ax.set_yscale("log")
            where = "channel #0" if view == "unit" else "pooled"
            ax.set_title(f"layer #{layer_number(layer)} · {where}", fontsize=10)
            ax.set_ylabel(titles[stat])
            if r == 0 and c == 0:
                legend_with_labels(ax, fontsize=7)
            elif ax.get_legend():
                ax.get_legend().remove()
    fig.suptitle(f"VGG on CIFAR-10, lr {lr:g}: change of the activations' mean and variance from one step to the "
                 f"next (Santurkar et al. Fig 8)")
    band = f"; line: mean, band: range over {nseeds} seeds" if nseeds > 1 else ""
    return save(fig, out, "fig_santurkar8_moments", provenance(runs, "fixed test batch, every probe and the step after"
                                                                    + band))


def fig_santurkar2_noisy_bn(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    return _noisy_bn(metrics, runs, out, view="unit")


def fig_santurkar2_noisy_bn_pooled(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    return _noisy_bn(metrics, runs, out, view="pooled")
