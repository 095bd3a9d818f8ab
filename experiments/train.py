"""Train one job: python experiments/train.py experiment=mnist_bn [overrides]  (-m for sweeps)."""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bnrepro import BnreproError
from bnrepro.loop import Interrupted
from bnrepro.run import train

log = logging.getLogger("bnrepro")


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        info = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    except BnreproError as e:
        log.error("%s", e)
        sys.exit(2)
    except Interrupted:  # the run said where it stopped and how to resume, in one line
        sys.exit(130)
    return info.get("final_test_acc")  # what a Hydra sweeper optimises


if __name__ == "__main__":
    main()
