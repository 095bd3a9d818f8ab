"""Evaluation under covariate shift (the article's §C.2.3-C.2.4) from stored metrics: test accuracy and the last
hidden layer's largest activation inputs against the size of each shift, for each network and each way BN
normalises; and how much one image's prediction depends on its batch."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bnrepro.figures.style import colour, data_label, label, ordered, palette, provenance, save, seed_band, setup

KIND_AXES = {"contrast": "contrast factor (1: none)", "brightness": "brightness added (0: none)",
             "classes": "classes kept (10: all)"}
# BN's three ways to normalise (src/bnrepro/probes/shift.py): population statistics (model.eval()), the test
# batch's own, and statistics re-estimated on shifted data
MODES = ("population", "batch", "reestimated")


def shift_long(metrics: pd.DataFrame) -> pd.DataFrame:
    s = metrics[metrics["metric"].astype(str).str.startswith("shift/")].copy()
    parts = s["metric"].astype(str).str.extract(
        r"^shift/(?P<kind>contrast|brightness|classes)/(?P<level>[^/]+)/(?P<mode>[^/]+)/(?P<stat>[^/]+)$")
    s = pd.concat([s, parts], axis=1).dropna(subset=["kind"])
    s["level"] = s["level"].astype(float)
    s["variant"] = s["variant"].astype(str)
    s["network"] = [f"{label(v)}, {m}" if v == "batch" else label(v) for v, m in zip(s["variant"], s["mode"])]
    return s


def fig_shift(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    s = shift_long(metrics)
    if s.empty:
        return []
    setup()
    nseeds = s["seed"].nunique()
    variants = ordered(s["variant"])
    hue = [f"{label(v)}, {m}" if v == "batch" else label(v) for v in variants
           for m in (MODES if v == "batch" else MODES[:1])]
    colors = {h: (colour(v)) for v in variants for h in hue if h.startswith(label(v))}
    dashes = {h: (2, 2) if h.endswith(", batch") else (5, 2, 1, 2) if h.endswith("reestimated") else ""
              for h in hue}
    kinds = [k for k in KIND_AXES if k in set(s["kind"])]
    fig, axes = plt.subplots(2, len(kinds) + 1, figsize=(4.6 * (len(kinds) + 1), 8), squeeze=False)
    for c, kind in enumerate(kinds):
        for r, (stat, ylabel) in enumerate((("acc", "test accuracy"),
                                            ("act_p99", "99th pct of |activation input|, last hidden layer"))):
            ax = axes[r, c]
            d = s[(s["kind"] == kind) & (s["stat"] == stat)]
            sns.lineplot(data=d, x="level", y="value", hue="network", hue_order=hue, palette=colors, style="network",
                         dashes=dashes, marker="o", errorbar=seed_band(nseeds), ax=ax, legend=(r == 0 and c == 0))
            ax.set_xlabel(KIND_AXES[kind])
            ax.set_ylabel(ylabel if c == 0 else "")
            if kind != "brightness":
                ax.invert_xaxis()  # the shift grows to the right
            if stat == "act_p99":
                ax.set_yscale("log")
        axes[0, c].set_title(f"shift: {kind}", fontsize=10)
    if axes[0, 0].get_legend():
        axes[0, 0].legend(fontsize=7, title="network, BN's statistics", title_fontsize=7)
    dep = metrics[metrics["metric"].astype(str).str.startswith("shift/dependency/")].copy()
    dep["stat"] = dep["metric"].astype(str).str.rsplit("/", n=1).str[-1]
    dep["variant"] = dep["variant"].astype(str)
    for r, (stat, ylabel) in enumerate((("prob_sd", "sd of p(true class) across batches"),
                                        ("flip_rate", "batches that change its predicted class"))):
        ax = axes[r, -1]
        sns.barplot(data=dep[dep["stat"] == stat], x="variant", y="value", order=variants, hue="variant",
                    hue_order=variants, palette=palette(variants), errorbar=seed_band(nseeds), ax=ax, legend=False)
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels([label(v) for v in variants], fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel(ylabel)
    axes[0, -1].set_title("one image in different batches (batch statistics, no shift)", fontsize=10)
    fig.suptitle(f"{data_label(runs)}: shifted test data, and BN's three ways to normalise it"
                 + (f" (mean ± sd over {nseeds} seeds)" if nseeds > 1 else ""))
    fig.tight_layout()
    return save(fig, out, "fig_shift", provenance(runs))
