"""The generalisation gap against the batch size, with and without BN (the article's §C.2.2), from stored metrics:
each run's last evaluation of its training subset (evaluation mode) and of the test set."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bnrepro.figures.style import (ALL_VARIANTS, PALETTE, data_label, legend_with_labels, provenance, save,
                                   seed_band, setup)


def final_accuracies(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run: batch size, variant, seed, the last train (evaluation mode) and test accuracy, the gap."""
    keep = ((metrics["split"] == "train") & (metrics["metric"] == "eval_acc")) | (
        (metrics["split"] == "test") & (metrics["metric"] == "acc"))
    m = metrics[keep].copy()
    m["what"] = m["split"].astype(str)
    last = m.sort_values("step").groupby(["run_id", "what"], observed=True).tail(1)
    wide = last.pivot_table(index=["run_id", "variant", "batch_size", "seed"], columns="what", values="value",
                            observed=True).reset_index()
    wide["gap"] = wide["train"] - wide["test"]
    wide["variant"] = wide["variant"].astype(str)
    return wide


def fig_batch_size(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    d = final_accuracies(metrics)
    variants = [v for v in ALL_VARIANTS if v in set(d["variant"])]
    nseeds = d["seed"].nunique()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    sns.lineplot(data=d, x="batch_size", y="gap", hue="variant", hue_order=variants, palette=PALETTE, marker="o",
                 errorbar=seed_band(nseeds), ax=axes[0])
    axes[0].set_title("generalisation gap: train − test accuracy")
    axes[0].set_ylabel("train accuracy − test accuracy")
    long = d.melt(id_vars=["variant", "batch_size", "seed"], value_vars=["train", "test"], var_name="split",
                  value_name="acc")
    sns.lineplot(data=long, x="batch_size", y="acc", hue="variant", hue_order=variants, palette=PALETTE,
                 style="split", style_order=["train", "test"], marker="o", errorbar=seed_band(nseeds), ax=axes[1])
    axes[1].set_title("final accuracy (train: 10k training images, evaluation mode)")
    axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(d["batch_size"].unique()))
        ax.set_xticklabels([str(b) for b in sorted(d["batch_size"].unique())])
        ax.set_xlabel("batch size (same number of epochs, same learning rate)")
        legend_with_labels(ax, fontsize=8)
    fig.suptitle(f"{data_label(runs)}, 3 sigmoid hidden layers: batch size and the generalisation gap"
                 + (f" (mean ± sd over {nseeds} seeds)" if nseeds > 1 else ""))
    fig.tight_layout()
    return save(fig, out, "fig_batch_size", provenance(runs))
