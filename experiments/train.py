"""Train one job: python experiments/train.py experiment=mnist_bn [overrides]  (-m for sweeps)."""

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bnrepro import EXIT_INTERRUPTED, EXIT_REFUSED, EXIT_UNWRITABLE, BnreproError, unwritable
from bnrepro.config import register
from bnrepro.loop import Interrupted
from bnrepro.run import train

log = logging.getLogger("bnrepro")


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        info = train(cfg, run_dir)
    except BnreproError as e:
        log.error("%s", e)
        sys.exit(EXIT_REFUSED)
    except Interrupted:  # the run said where it stopped and how to resume, in one line
        sys.exit(EXIT_INTERRUPTED)
    except OSError as e:
        if not unwritable(e):
            raise
        log.error("cannot write %s: %s. Free space (or make the folder writable); the same command then resumes "
                  "from the run's last checkpoint", e.filename or run_dir, e.strerror)
        sys.exit(EXIT_UNWRITABLE)
    return objective(info)


def objective(info: dict) -> float | None:
    """What a Hydra sweeper (hydra/sweeper=optuna) minimises: the final test loss, infinite for a run that diverged
    (its last evaluation may precede the divergence)."""
    if info.get("status") == "diverged":
        return math.inf
    return info.get("final_test_loss")


if __name__ == "__main__":
    register()  # the schemas configs/train.yaml composes from, and its resolvers
    main()
