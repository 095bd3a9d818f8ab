"""How variants and data are named for readers, shared by the figures and the report: each variant's label and
colour in one table, and what the runs trained on. No plotting here: importing it leaves matplotlib alone."""

from __future__ import annotations

import zlib

import pandas as pd

# Every variant the figures know (plan.variant names them): its label and colour, in the figures' order. A variant
# not listed here, such as a normaliser registered in models/norms.py, still appears: after these, labelled by its
# name, in a colour of its own (SPARE_COLOURS, chosen by the name).
VARIANTS = (
    ("none", "without BN", "#d95f02"),
    ("batch", "with BN", "#1b9e77"),
    ("noisy_batch", "noisy BN", "#7570b3"),
    ("noisy_batch_channel", "noisy BN, one draw per channel", "#e6ab02"),
    ("l1", "l1 norm", "#e7298a"),
    ("l2", "l2 norm", "#66a61e"),
    ("linf", "l-inf norm", "#a6761d"),
    ("layer", "LayerNorm", "#1f78b4"),
    ("batch_post", "BN after the nonlinearity", "#6a3d9a"),
    ("batch_no_affine", "BN without γ, β", "#b15928"),
    ("none_sigmoid", "sigmoid, without BN", "#fdbf6f"),
    ("batch_sigmoid", "sigmoid, with BN", "#b2df8a"),
    ("batch_population", "BN with population statistics in training", "#e31a1c"),
    ("none_warmup", "without BN, learning-rate warm-up", "#fb9a99"),
    ("batch_warmup", "with BN, learning-rate warm-up", "#a6cee3"),
)
# Colours far from the table's (no orange near "without BN", no green near "with BN"), for the variants it lacks.
SPARE_COLOURS = ("#000000", "#17becf", "#bcbd22", "#7f7f7f", "#000080", "#ff00ff", "#008080", "#8b4513")
STANDARD_VS_BN = ["none", "batch"]  # what the figures of the standard network against BN compare
_LABELS = {name: text for name, text, _ in VARIANTS}
_COLOURS = {name: colour for name, _, colour in VARIANTS}


def ordered(present) -> list[str]:
    """The variants in `present` in the figures' order: the known ones first, then the others by name."""
    present = {str(v) for v in present}
    return [v for v in _LABELS if v in present] + sorted(present - set(_LABELS))


def compared(present) -> list[str]:
    """What a figure of the standard network against BN draws from the variants `present`: those two, then every
    variant the table does not know (a normaliser a user registered), so that a new one appears beside them."""
    present = {str(v) for v in present}
    return [v for v in STANDARD_VS_BN if v in present] + sorted(present - set(_LABELS))


def colour(variant: str) -> str:
    return _COLOURS.get(variant) or SPARE_COLOURS[zlib.crc32(variant.encode()) % len(SPARE_COLOURS)]


def label(variant: str) -> str:
    return _LABELS.get(variant, variant)


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


# What data_kind says, in the words of the figures' footnotes and the report's provenance lines
DATA_TEXT = {"synthetic": "synthetic data", "official": "official data", "unofficial": "UNOFFICIAL data (see README)",
             "mixed": "UNOFFICIAL data, mixed with official (see README)"}


def code_version(runs: pd.DataFrame) -> tuple[list[str], bool]:
    """The commits the runs were made at (8 characters each), and whether any ran with uncommitted changes."""
    commits = sorted({str(c)[:8] for c in runs.get("git_commit", pd.Series(dtype=object)).dropna()})
    return commits, bool(runs.get("git_dirty", pd.Series(dtype=bool)).fillna(False).astype(bool).any())


def provenance(runs: pd.DataFrame, extra: str = "") -> str:
    """The footnote every figure carries: data, seeds, code version."""
    seeds = runs["seed"].nunique() if "seed" in runs else "?"
    commits, dirty = code_version(runs)
    code = f"code {', '.join(commits) or 'uncommitted'}{' +local changes' if dirty else ''}"
    return f"{DATA_TEXT[data_kind(runs)]} · {seeds} seed(s) · {code}" + (f" · {extra}" if extra else "")
