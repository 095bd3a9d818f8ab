"""Redraw figures from stored metrics only (results/<name>/metrics.parquet); never trains.

    python experiments/figures.py            # every results folder that has metrics
    python experiments/figures.py mnist_bn   # one
"""

import argparse
from pathlib import Path

import pandas as pd

from bnrepro.collect import summarize, summarize_variants
from bnrepro.figures import cifar, dln, ics, landscape, lp_norm, mnist, sweep

RESULTS = Path(__file__).resolve().parents[1] / "results"
DRAWERS = {"mnist_bn": mnist.draw, "mnist_lr_sweep": sweep.draw, "cifar_bn": cifar.draw, "ics": ics.draw,
           "landscape": landscape.draw, "dln": dln.draw, "lp_norm": lp_norm.draw}
# CIFAR reports the steps to given training accuracies (50-step rolling mean), as the paper compares training speed.
CIFAR_SUMMARY = {"thresholds": (0.5, 0.7, 0.9), "on": "train", "smooth": 5}
SUMMARIES = {"cifar_bn": CIFAR_SUMMARY, "ics": CIFAR_SUMMARY, "landscape": CIFAR_SUMMARY, "lp_norm": CIFAR_SUMMARY}


def summary(results_dir: Path) -> pd.DataFrame:
    metrics = pd.read_parquet(results_dir / "metrics.parquet")
    runs = pd.read_csv(results_dir / "runs.csv")
    s = summarize(metrics, runs, **SUMMARIES.get(results_dir.name, {}))
    s.to_csv(results_dir / "summary.csv", index=False)
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help=f"results to draw (default: all of {sorted(DRAWERS)} present)")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--quiet", action="store_true", help="do not print the summary")
    args = p.parse_args()
    names = args.names or [n for n in DRAWERS if (args.results / n / "metrics.parquet").is_file()]
    if not names:
        raise SystemExit(f"no stored metrics under {args.results}: run `make mnist-bn` first")
    for name in names:
        folder = args.results / name
        if not (folder / "metrics.parquet").is_file():
            raise SystemExit(f"{folder}/metrics.parquet not found: run the experiment first (see `make help`)")
        s = summary(folder)
        paths = DRAWERS[name](folder)
        print(f"{name}: wrote {', '.join(p.name for p in paths)} and summary.csv in {folder}")
        if not args.quiet:
            with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
                print(s.to_string(index=False))
                print("\nper variant (mean and std over seeds):")
                print(summarize_variants(s).to_string(index=False))


if __name__ == "__main__":
    main()
