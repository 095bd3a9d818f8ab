"""Redraw figures from stored metrics only (results/<name>/metrics.parquet); never trains.

    python experiments/figures.py            # every results folder that has metrics
    python experiments/figures.py mnist_bn   # one

Which figures a folder gets is named by its experiment's config (`figures:` in configs/experiment/*.yaml).
"""

import argparse
import sys
from pathlib import Path

import matplotlib
import pandas as pd

from bnrepro import EXIT_REFUSED, BnreproError, figures
from bnrepro.collect import summarize, summarize_variants
from bnrepro.io_utils import unwritable_reason

matplotlib.use("Agg")  # files only, with or without a display

RESULTS = Path(__file__).resolve().parents[1] / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="results folders to draw (default: every one with metrics)")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--quiet", action="store_true", help="do not print the summary")
    args = p.parse_args()
    names = args.names or sorted(f.parent.name for f in args.results.glob("*/metrics.parquet"))
    if not names:
        raise SystemExit(f"no stored metrics under {args.results}: run `make mnist-bn` first")
    for name in names:  # every folder checked before any is drawn
        folder = args.results / name
        if not (folder / "metrics.parquet").is_file():
            raise SystemExit(f"{folder}/metrics.parquet not found: run the experiment first (see `make help`)")
        if (reason := unwritable_reason(folder)) is not None:
            print(f"figures: cannot write the figures of {folder}: {reason}", file=sys.stderr)
            sys.exit(EXIT_REFUSED)
    loaded = {}
    for name in names:  # every folder read before any is drawn: a damaged file stops the command in one line
        try:
            loaded[name] = figures.load(args.results / name)
        except BnreproError as e:
            print(f"figures: {e}", file=sys.stderr)
            sys.exit(EXIT_REFUSED)
    for name in names:
        folder = args.results / name
        results = loaded[name]
        spec = figures.spec(figures.experiment_of(results))
        s = summarize(results.metrics, results.runs, **spec.summary)
        s.to_csv(folder / "summary.csv", index=False)
        paths = figures.draw(results, spec)
        print(f"{name}: wrote {', '.join(p.name for p in paths)} and summary.csv in {folder}")
        if not args.quiet:
            with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
                print(s.to_string(index=False))
                print("\nper variant (mean and std over seeds):")
                print(summarize_variants(s).to_string(index=False))


if __name__ == "__main__":
    main()
