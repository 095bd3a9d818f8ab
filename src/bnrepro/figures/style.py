from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

VARIANT_LABELS = {"none": "without BN", "batch": "with BN", "noisy_batch": "noisy BN",
                  "l1": "l1 norm", "l2": "l2 norm", "linf": "l-inf norm", "layer": "LayerNorm",
                  "batch_post": "BN after the nonlinearity", "batch_no_affine": "BN without γ, β",
                  "noisy_batch_channel": "noisy BN, one draw per channel", "none_sigmoid": "sigmoid, without BN",
                  "batch_sigmoid": "sigmoid, with BN"}
VARIANT_ORDER = ["none", "batch"]
PALETTE = {"none": "#d95f02", "batch": "#1b9e77", "noisy_batch": "#7570b3",
           "l1": "#e7298a", "l2": "#66a61e", "linf": "#a6761d", "layer": "#1f78b4",
           "batch_post": "#6a3d9a", "batch_no_affine": "#b15928", "noisy_batch_channel": "#cab2d6",
           "none_sigmoid": "#fdbf6f", "batch_sigmoid": "#b2df8a"}
ALL_VARIANTS = ["none", "batch", "noisy_batch", "noisy_batch_channel", "l1", "l2", "linf", "layer", "batch_post",
                "batch_no_affine", "none_sigmoid", "batch_sigmoid"]


def setup() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def label(variant: str) -> str:
    return VARIANT_LABELS.get(variant, variant)


def seed_band(nseeds: int):
    """seaborn's errorbar: the mean with a ±1 sd band over several seeds, a plain line for one."""
    return "sd" if nseeds > 1 else None


def legend_with_labels(ax, **kwargs) -> None:
    """The legend with variant codes (none, batch, ...) spelled out for readers."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [label(lab) for lab in labels], **kwargs)


DATA_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def data_label(runs: pd.DataFrame, default: str = "MNIST") -> str:
    """The dataset's name for a title, from runs.csv (`default` for results recorded before it kept `data`)."""
    names = sorted(runs["data"].dropna().astype(str).unique()) if "data" in runs else []
    return " + ".join(DATA_LABELS.get(n, n) for n in names) or default


SYNTHETIC_DATA = {"linear"}  # data configs that generate their samples: "official" means nothing for them


def data_kind(runs: pd.DataFrame) -> str:
    """What the runs trained on: "synthetic", "official", "unofficial" or "mixed". A run that does not say whether
    its data was official is not counted as official."""
    if "data" in runs and runs["data"].astype(str).isin(SYNTHETIC_DATA).all():
        return "synthetic"
    official = runs.get("data_official", pd.Series([True])).fillna(False).astype(bool)
    return "official" if official.all() else "unofficial" if not official.any() else "mixed"


def provenance(runs: pd.DataFrame, extra: str = "") -> str:
    """The footnote every figure carries: data, seeds, code version."""
    seeds = runs["seed"].nunique() if "seed" in runs else "?"
    commits = sorted({str(c)[:8] for c in runs.get("git_commit", pd.Series(dtype=object)).dropna()})
    dirty = bool(runs.get("git_dirty", pd.Series(dtype=bool)).fillna(False).any())
    data = {"synthetic": "synthetic data", "official": "official data"}.get(data_kind(runs),
                                                                             "UNOFFICIAL data (see README)")
    code = f"code {', '.join(commits) or 'uncommitted'}{' +local changes' if dirty else ''}"
    return f"{data} · {seeds} seed(s) · {code}" + (f" · {extra}" if extra else "")


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
