"""Run a search's grid (configs/search/<name>.yaml) and rank its settings by their distance to the paper's values.

    python experiments/search.py dln_scale            # runs what is missing, then scores
    python experiments/search.py dln_scale --score    # scores the stored runs only

Runs go to runs/search/<name>/ (finished ones are skipped when run again); the ranking to results/search/<name>/.
"""

import argparse
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from bnrepro.paths import PROJECT_ROOT
from bnrepro.search import markdown, run_settings, score


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="configs/search/<name>.yaml")
    p.add_argument("--score", action="store_true", help="score the stored runs, train nothing")
    p.add_argument("--runs", type=Path, help="where the runs are (default runs/search/<name>)")
    p.add_argument("--out", type=Path, help="where the ranking goes (default results/search/<name>)")
    p.add_argument("overrides", nargs="*", help="more Hydra overrides for every run (a test shrinks steps here)")
    args = p.parse_args()
    config = PROJECT_ROOT / "configs" / "search" / f"{args.name}.yaml"
    if not config.is_file():
        sys.exit(f"search: error: no {config}")
    search = OmegaConf.load(config)
    runs = args.runs or PROJECT_ROOT / "runs" / "search" / search.name
    out = args.out or PROJECT_ROOT / "results" / "search" / search.name
    if not args.score:
        cmd = [sys.executable, str(PROJECT_ROOT / "experiments" / "train.py"), "-m", "hydra/launcher=parallel",
               f"experiment={search.experiment}", *search.overrides, *(f"{k}={v}" for k, v in search.grid.items()),
               *args.overrides, f"hydra.sweep.dir={runs}"]
        print("search:", " ".join(cmd[1:]), flush=True)
        if subprocess.run(cmd, cwd=PROJECT_ROOT).returncode:
            sys.exit("search: error: a run failed (the ranking needs every run; running again resumes)")
    from bnrepro.collect import load_runs
    metrics, finished = load_runs([runs])
    scores = score(metrics, run_settings([runs], list(search.grid), finished.run_id), search)
    out.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out / "scores.csv", index=False)
    (out / "README.md").write_text(markdown(scores, search))
    print(markdown(scores, search))
    print(f"search: ranking -> {out}")


if __name__ == "__main__":
    main()
