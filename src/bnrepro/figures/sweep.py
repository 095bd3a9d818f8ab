"""Final test accuracy vs learning rate, one line per variant; diverged runs are drawn, not dropped."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bnrepro.collect import summarize
from bnrepro.figures.style import (
    colour,
    data_label,
    label,
    legend_with_labels,
    ordered,
    palette,
    provenance,
    save,
    seed_band,
    setup,
)


def sweep_table(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    s = summarize(metrics, runs)
    s["variant"] = s["variant"].astype(str)
    s["diverged"] = s["status"] == "diverged"
    return s


def fig_lr_sweep(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    s = sweep_table(metrics, runs)
    ok, bad = s[~s["diverged"]], s[s["diverged"]]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    variants = ordered(s["variant"])
    sns.lineplot(data=ok, x="lr", y="final_test_acc", hue="variant", hue_order=variants, palette=palette(variants),
                 marker="o", errorbar=seed_band(s["seed"].nunique()), ax=ax)
    for variant, g in bad.groupby("variant"):
        ax.scatter(g["lr"], [0.0] * len(g), marker="X", s=90, color=colour(variant), zorder=5,
                   label=f"{label(variant)}: diverged")
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.02)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final test accuracy")
    steps = int(s["steps"].max()) if len(s) else 0
    ax.set_title(f"{data_label(runs)} MLP: final test accuracy vs learning rate ({steps} steps)")
    legend_with_labels(ax, fontsize=8)
    s.to_csv(out / "sweep_summary.csv", index=False)
    return save(fig, out, "fig_lr_sweep", provenance(runs, "X at 0 = diverged (a non-finite loss, or a loss over the "
                                                             "divergence threshold)"))
