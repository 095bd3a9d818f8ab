"""Build a W&B workspace for an experiment: one section per figure, lines grouped by variant with a band over seeds.

    python experiments/wandb_workspace.py mnist_bn                 # every run of the experiment
    python experiments/wandb_workspace.py cifar_bn --lr 0.1        # only the runs at lr 0.1

Logged in and online, it saves the workspace in the W&B project (logger.project, logger.entity) and prints its
address; otherwise it says so in one line and writes the workspace's definition to
runs/wandb_workspaces/<experiment>.json (the same command, logged in and online, saves it).
"""

import argparse
import sys
from pathlib import Path

from hydra.errors import HydraException

from bnrepro import EXIT_REFUSED, BnreproError
from bnrepro.config import compose, register
from bnrepro.config.check import check
from bnrepro.io_utils import reachable
from bnrepro.wandb_workspace import workspace

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", help="a config in configs/experiment/")
    p.add_argument("--lr", type=float, default=None, help="show only the runs at this learning rate")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "wandb_workspaces")
    args = p.parse_args()
    register()
    try:
        c = check(compose(f"experiment={args.experiment}", "logger=wandb"))
    except (BnreproError, HydraException) as e:  # an unknown experiment is Hydra's error
        print(f"wandb_workspace: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    import wandb

    # Online only when asked, the server answers and a key is stored: nothing waits on a network that is not there.
    online = c.logger.mode == "online" and reachable("https://api.wandb.ai") and wandb.login(prompt=False)
    entity = c.logger.entity or (wandb.Api().default_entity if online else None)
    view = workspace(c, entity or "<your entity>", c.logger.project, args.lr)
    if online:
        view.save()
        print(f"saved the workspace: {view.url}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{args.experiment}{'' if args.lr is None else f'-lr{args.lr:g}'}.json"
    out.write_text(view._to_model().model_dump_json(indent=1))
    print(f"W&B is offline (or not logged in): wrote the workspace's definition to {out}; after `wandb login`, "
          f"WANDB_MODE=online python experiments/wandb_workspace.py {args.experiment} saves it")


if __name__ == "__main__":
    main()
