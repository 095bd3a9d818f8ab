"""Gather run folders into results/<name>/ (metrics.parquet, runs.csv) for the figures.

    python experiments/collect.py runs/mnist_bn/multirun_... --out results/mnist_bn
"""

import argparse
from pathlib import Path

from bnrepro.collect import write_results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run or sweep folders (searched for run.json)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    metrics, runs = write_results(args.runs, args.out)
    print(f"collected {len(runs)} run(s), {len(metrics)} metric rows -> {args.out}")
    print(runs["status"].value_counts().to_string())


if __name__ == "__main__":
    main()
