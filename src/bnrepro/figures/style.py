"""What every figure shares: seaborn's theme, seed bands, legends, the palette of the variant table (bnrepro.labels),
and `save`, which writes a PNG and a byte-stable PDF with the provenance footnote. It leaves matplotlib's backend
alone: the command-line scripts choose Agg, a notebook keeps its inline one."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

# The variant and data names, shared with the report, for the figure modules (which import from here).
from bnrepro.labels import (  # noqa: F401
    SPARE_COLOURS,
    STANDARD_VS_BN,
    colour,
    compared,
    data_kind,
    data_label,
    label,
    ordered,
    provenance,
)


def palette(variants) -> dict[str, str]:
    """seaborn's palette for these variants (a dict palette must name every hue level); variants the table lacks
    take the spare colours in turn, so that no two in one figure share one."""
    out = {v: colour(v) for v in variants}
    spare = iter(c for c in SPARE_COLOURS if c not in out.values())
    seen: set[str] = set()
    for v in variants:
        if out[v] in seen:
            out[v] = next(spare, out[v])
        seen.add(out[v])
    return out


def setup() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def seed_band(nseeds: int):
    """seaborn's errorbar: the mean with a ±1 sd band over several seeds, a plain line for one."""
    return "sd" if nseeds > 1 else None


def legend_with_labels(ax, **kwargs) -> None:
    """The legend with variant codes (none, batch, ...) spelled out for readers."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [label(lab) for lab in labels], **kwargs)


def layer_number(layer: str) -> int:
    """layer3 -> 3: probed layers sort and print by their number in the network."""
    return int(layer.removeprefix("layer"))


def has_metric(metrics: pd.DataFrame, pattern: str) -> bool:
    """Whether any stored metric name matches the regular expression (results recorded before a probe existed
    lack its metrics, and their figures are skipped rather than drawn empty)."""
    return bool(pd.Series(metrics["metric"].astype(str).unique()).str.contains(pattern).any())


def save(fig: plt.Figure, out_dir: Path, name: str, footnote: str) -> list[Path]:
    fig.text(0.005, -0.01, footnote, fontsize=7, color="0.4", ha="left", va="top")  # below the axes labels
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for p in paths:
        # No creation date in the PDF: redrawing unchanged metrics gives byte-identical files.
        fig.savefig(p, dpi=150, bbox_inches="tight", metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
    plt.close(fig)
    return paths
