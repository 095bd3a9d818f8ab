"""Learning-rate warm-up as a substitute for BN (Gilmer et al. 2022): at a learning rate where the standard network
fails, its training curves with and without a warm-up, beside BN's."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bnrepro.figures.shared import training_curves
from bnrepro.figures.style import data_label, legend_with_labels, ordered, palette, provenance, save, seed_band, setup


def fig_warmup(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """One row per learning rate: test accuracy and training loss of every variant (mean ± sd over seeds)."""
    setup()
    d = training_curves(metrics)
    variants, lrs = ordered(d["variant"]), sorted(d["lr"].unique())
    nseeds = d["seed"].nunique()
    fig, axes = plt.subplots(len(lrs), 2, figsize=(11, 3.8 * len(lrs)), squeeze=False, layout="constrained")
    for row, lr in zip(axes, lrs):
        at = d[np.isclose(d["lr"], lr)]
        for ax, (metric, split, ylabel) in zip(row, (("acc", "test", "test accuracy"),
                                                      ("loss", "train (smoothed)", "training loss"))):
            dm = at[(at["metric"] == metric) & (at["split"] == split)]
            sns.lineplot(data=dm, x="step", y="value", hue="variant", hue_order=variants, palette=palette(variants),
                         errorbar=seed_band(nseeds), ax=ax)
            if metric == "loss":
                ax.set_yscale("log")
            ax.set_ylabel(ylabel)
            ax.set_title(f"lr {lr:g}: {ylabel}", fontsize=10)
            legend_with_labels(ax, fontsize=8)
    fig.suptitle(f"{data_label(runs)}: learning-rate warm-up against BN where the standard network fails"
                 + (f" (mean ± sd over {nseeds} seeds)" if nseeds > 1 else ""))
    return save(fig, out, "fig_warmup",
                provenance(runs, "warm-up: step t of the first N uses lr·t/N (N: the experiment's optim.warmup_steps)"))
