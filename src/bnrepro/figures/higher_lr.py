"""Ioffe & Szegedy's higher-learning-rate table (§4.2, the article's Figs 1 and 5), rebuilt from stored metrics:
test accuracy over training for each network and learning-rate multiple, and the steps each needs to reach the
baseline's best test accuracy."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from bnrepro.figures.style import data_label, label, ordered, provenance, save, seed_band, setup

BASELINE = "none"  # the plain ReLU network at the lowest learning rate: every multiple is of its rate


def curves(metrics: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Test accuracy rows with a `config` label (network and multiple of the baseline rate), and that rate."""
    t = metrics[(metrics["split"] == "test") & (metrics["metric"] == "acc")].copy()
    t["variant"] = t["variant"].astype(str)
    base_lr = float(t.loc[t["variant"] == BASELINE, "lr"].min())
    t["multiple"] = (t["lr"] / base_lr).round(2)
    t["config"] = [f"{label(v)}, ×{m:g}" for v, m in zip(t["variant"], t["multiple"])]
    return t, base_lr


def table(t: pd.DataFrame) -> pd.DataFrame:
    """Per network and multiple: seeds, steps to the baseline's best test accuracy (mean over its seeds; the median
    over seeds of the first evaluated step at or above it, or never), and the best test accuracy (mean ± sd)."""
    base = t[(t["variant"] == BASELINE) & (t["multiple"] == 1)]
    target = float(base.groupby("seed")["value"].max().mean())
    rows = []
    order = {v: i for i, v in enumerate(ordered(t["variant"]))}
    for (variant, multiple), d in sorted(t.groupby(["variant", "multiple"]), key=lambda g: (order.get(g[0][0], 99),
                                                                                            g[0][1])):
        steps, best = [], []
        for _, ds in d.sort_values("step").groupby("seed"):
            reached = ds[ds["value"] >= target]["step"]
            steps.append(float(reached.iloc[0]) if len(reached) else np.inf)
            best.append(float(ds["value"].max()))
        med = float(np.median(steps))
        rows.append({"network": label(variant), "variant": variant, "lr multiple": multiple, "seeds": len(best),
                     "steps to baseline's best": "never" if np.isinf(med) else int(med),
                     "reached in": f"{sum(np.isfinite(steps))}/{len(steps)} seeds",
                     "best test acc": round(float(np.mean(best)), 4),
                     "sd": round(float(np.std(best, ddof=1)), 4) if len(best) > 1 else np.nan})
    out = pd.DataFrame(rows)
    out.attrs["target"] = target
    return out


def markdown(df: pd.DataFrame) -> str:
    cells = [[str(c) for c in df.columns]] + [["" if pd.isna(v) else str(v) for v in row] for row in df.itertuples(
        index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join([lines[0], "|" + "---|" * len(df.columns), *lines[1:]])


def fig_higher_lr(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    setup()
    t, base_lr = curves(metrics)
    tab = table(t)
    nseeds = t["seed"].nunique()
    configs = [f"{label(v)}, ×{m:g}" for v, m in zip(tab["variant"], tab["lr multiple"])]
    palette = sns.color_palette("tab10", len(configs))
    fig, ax = plt.subplots(figsize=(9, 5))
    sns.lineplot(data=t, x="step", y="value", hue="config", hue_order=configs, palette=palette,
                 errorbar=seed_band(nseeds), ax=ax)
    ax.axhline(tab.attrs["target"], color="0.5", linestyle=":", linewidth=1, label="baseline's best")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8, title=f"network, multiple of lr {base_lr:g}", title_fontsize=8)
    ax.set_title(f"{data_label(runs, 'CIFAR-10')} VGG: higher learning rates with BN (Ioffe & Szegedy §4.2)"
                 + (f", mean ± sd over {nseeds} seeds" if nseeds > 1 else ""), fontsize=10)
    text = markdown(tab.drop(columns=["variant"]))
    (out / "table_higher_lr.md").parent.mkdir(parents=True, exist_ok=True)
    (out / "table_higher_lr.md").write_text(
        f"Steps to the baseline's best test accuracy ({tab.attrs['target']:.4f}: the plain ReLU network at lr "
        f"{base_lr:g}, best evaluation, mean over its seeds) and the best test accuracy, from metrics.parquet.\n\n"
        + text + "\n")
    return save(fig, out, "fig_higher_lr", provenance(runs))
