"""The generalisation gap against the batch size, with and without BN (the article's §C.2.2), from stored metrics:
each run's last evaluation of its training subset (evaluation mode) and of the test set, for each learning-rate
reading: the same rate at every batch size, and the rate scaled with the batch (configs/experiment/
mnist_batch_size*.yaml)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bnrepro.figures.style import data_label, legend_with_labels, ordered, palette, provenance, save, seed_band, setup


def final_accuracies(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run: batch size, variant, seed, the last train (evaluation mode) and test accuracy, the gap."""
    keep = ((metrics["split"] == "train") & (metrics["metric"] == "eval_acc")) | (
        (metrics["split"] == "test") & (metrics["metric"] == "acc"))
    m = metrics[keep].copy()
    m["what"] = m["split"].astype(str)
    last = m.sort_values("step").groupby(["run_id", "what"], observed=True).tail(1)
    wide = last.pivot_table(index=["run_id", "variant", "batch_size", "lr", "seed"], columns="what", values="value",
                            observed=True).reset_index()
    wide["gap"] = wide["train"] - wide["test"]
    wide["variant"] = wide["variant"].astype(str)
    return wide


def by_lr_reading(d: pd.DataFrame) -> pd.DataFrame:
    """final_accuracies with a `reading` column: "same lr" for the runs at the base rate (the most common one),
    "lr ∝ batch" for the runs whose rate is scaled with the batch, joined by the base batch size's own runs (the
    batch size at which the scaled rate is the base rate belongs to both readings)."""
    base_lr = float(d["lr"].round(12).mode().iloc[0])
    same = np.isclose(d["lr"], base_lr)
    out = [d[same].assign(reading="same lr")]
    if (~same).any():
        first = d[~same].iloc[0]
        base_batch = round(first["batch_size"] * base_lr / first["lr"])
        scaled = ~same | (same & (d["batch_size"] == base_batch))
        out.append(d[scaled].assign(reading="lr ∝ batch"))
    return pd.concat(out, ignore_index=True)


def fig_batch_size(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    d = by_lr_reading(final_accuracies(metrics))
    readings = [r for r in ("same lr", "lr ∝ batch") if r in set(d["reading"])]
    variants = ordered(d["variant"])
    nseeds = d["seed"].nunique()
    fig, axes = plt.subplots(len(readings), 2, figsize=(11, 4.2 * len(readings)), squeeze=False)
    for r, reading in enumerate(readings):
        dr = d[d["reading"] == reading]
        lrs = ", ".join(f"{lr:g}" for lr in sorted(dr["lr"].unique()))
        sns.lineplot(data=dr, x="batch_size", y="gap", hue="variant", hue_order=variants, palette=palette(variants),
                     marker="o", errorbar=seed_band(nseeds), ax=axes[r, 0])
        axes[r, 0].set_title(f"{reading} (lr {lrs}): generalisation gap, train − test accuracy", fontsize=10)
        axes[r, 0].set_ylabel("train accuracy − test accuracy")
        long = dr.melt(id_vars=["variant", "batch_size", "seed"], value_vars=["train", "test"], var_name="split",
                       value_name="acc")
        sns.lineplot(data=long, x="batch_size", y="acc", hue="variant", hue_order=variants, palette=palette(variants),
                     style="split", style_order=["train", "test"], marker="o", errorbar=seed_band(nseeds),
                     ax=axes[r, 1])
        axes[r, 1].set_title(f"{reading}: final accuracy (train: 10k training images, evaluation mode)", fontsize=10)
        axes[r, 1].set_ylabel("accuracy")
        for ax in axes[r]:
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(dr["batch_size"].unique()))
            ax.set_xticklabels([str(b) for b in sorted(dr["batch_size"].unique())])
            ax.set_xlabel("batch size (the same number of steps at every size)")
            legend_with_labels(ax, fontsize=8)
    fig.suptitle(f"{data_label(runs)}, 3 sigmoid hidden layers: batch size and the generalisation gap"
                 + (f" (mean ± sd over {nseeds} seeds)" if nseeds > 1 else ""))
    fig.tight_layout()
    return save(fig, out, "fig_batch_size", provenance(runs))
