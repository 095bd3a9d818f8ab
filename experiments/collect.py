"""Gather run folders into results/<name>/ (metrics.parquet, runs.csv) for the figures.

    python experiments/collect.py runs/make/mnist_bn-seeds3 --out results/mnist_bn

Finished runs (completed or diverged) are collected; runs still running, interrupted, failed or without a run.json
are left out and named. --partial also collects interrupted runs, up to the step where they stopped (runs.csv
keeps their status): for a protocol that could not run to its end. --add keeps the runs already in --out and adds
these beside them: a new variant joins reference results without retraining the others. --replace puts each of
these in place of the run --out holds with the same experiment, variant, lr, seed and settings: a run made from a
dirty tree, rerun from a clean one.
"""

import argparse
import sys
from pathlib import Path

from bnrepro import EXIT_REFUSED, BnreproError
from bnrepro.collect import write_results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run or sweep folders (searched for run.json)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--partial", action="store_true", help="also runs stopped before their last step")
    p.add_argument("--add", action="store_true",
                   help="keep the runs already in --out and add these (a run already there is refused)")
    p.add_argument("--replace", action="store_true",
                   help="put these in place of the runs in --out with the same identity (each must match one)")
    args = p.parse_args()
    skipped: list[str] = []
    try:
        metrics, runs = write_results(args.runs, args.out, skipped, args.partial, args.add, args.replace)
    except (FileNotFoundError, ValueError, BnreproError) as e:
        print(f"collect: {e}", file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    print(f"collected {len(runs)} run(s), {len(metrics)} metric rows -> {args.out}")
    if skipped:
        print(f"left out {len(skipped)} unfinished run(s): {', '.join(skipped)}")
    print(runs["status"].value_counts().to_string())


if __name__ == "__main__":
    main()
