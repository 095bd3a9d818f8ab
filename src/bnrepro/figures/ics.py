"""Internal covariate shift, optimisation view (Santurkar et al. Fig 3; the article's Fig 7), from stored metrics."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bnrepro.figures.style import ALL_VARIANTS, PALETTE, layer_number, legend_with_labels, provenance, save, setup

STATS = {"l2": "ℓ2 difference ‖G − G′‖", "cos": "cos angle (G, G′)"}


def ics_long(metrics: pd.DataFrame) -> pd.DataFrame:
    d = metrics[(metrics["split"] == "probe") & metrics["metric"].astype(str).str.startswith("ics/")].copy()
    parts = d["metric"].astype(str).str.split("/", expand=True)
    d["layer"], d["stat"] = parts[1], parts[2]
    d["variant"] = d["variant"].astype(str)
    return d[d["stat"].isin(list(STATS))]


def fig_ics(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, name: str = "fig_ics", title: str = "") -> list[Path]:
    """Rows: the l2 difference and the cosine; columns: each learning rate and probed layer; standard vs BN."""
    setup()
    d = ics_long(metrics)
    if d.empty:
        raise ValueError("no ICS metrics (ics/...) in these results: run with trainer.ics_every > 0")
    layers = sorted(d["layer"].unique(), key=layer_number)
    lrs = sorted(d["lr"].unique(), reverse=True)
    variants = [v for v in ALL_VARIANTS if v in set(d["variant"])]
    columns = [(lr, layer) for lr in lrs for layer in layers]
    nseeds = d["seed"].nunique()
    fig, axes = plt.subplots(2, len(columns), figsize=(3.6 * len(columns), 6.2), squeeze=False, layout="constrained")
    for c, (lr, layer) in enumerate(columns):
        for r, stat in enumerate(STATS):
            ax = axes[r, c]
            sel = d[(d["lr"] == lr) & (d["layer"] == layer) & (d["stat"] == stat)]
            # The band is the range over seeds: an sd band dips below zero on the l2 panel's log axis.
            sns.lineplot(data=sel, x="step", y="value", hue="variant", hue_order=variants, palette=PALETTE,
                         errorbar=("pi", 100) if nseeds > 1 else None, ax=ax, linewidth=1)
            ax.set_title(f"lr {lr:g} · layer #{layer_number(layer)}", fontsize=10)
            ax.set_ylabel(STATS[stat] if c == 0 else "")
            if stat == "l2":
                ax.set_yscale("log")
            if r == 0 and c == 0:
                legend_with_labels(ax, fontsize=7)
            elif ax.get_legend():
                ax.get_legend().remove()
    fig.suptitle(title or "Internal covariate shift: a layer's gradient before (G) and after (G′) the earlier "
                          "layers' update (Santurkar et al. Fig 3)")
    band = f"; line: mean, band: range over {nseeds} seeds" if nseeds > 1 else ""
    return save(fig, out, name, provenance(runs, "same batch for G and G′" + band))


def draw(results_dir: Path) -> list[Path]:
    results_dir = Path(results_dir)
    metrics = pd.read_parquet(results_dir / "metrics.parquet")
    runs = pd.read_csv(results_dir / "runs.csv")
    return fig_ics(metrics, runs, results_dir)
