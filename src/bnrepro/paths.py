"""Where the project finds things when the config does not say: the data root, the same for `make` and for
`python experiments/train.py` run from any folder; and where a run goes, named so that the same command finds the
same folder again."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "datasets"  # the offline copies, where a workplace provides them
ENV_VAR = "BNREPRO_DATA"


def default_data_root() -> str:
    """BNREPRO_DATA when set; else ../shared/datasets beside this checkout when it exists; else ./data in the
    checkout (where a download goes)."""
    if ENV_VAR in os.environ:
        return os.environ[ENV_VAR]
    return str(SHARED_DATA if SHARED_DATA.is_dir() else PROJECT_ROOT / "data")


def experiment_folder(experiment: str | None, fresh: bool = False) -> str:
    """runs/<this>/...: the experiment config's name; fresh=true adds the time, for a folder no run has used."""
    name = str(experiment) if experiment else "default"
    return f"{name}@{datetime.now():%Y-%m-%d_%H-%M-%S-%f}" if fresh else name


FLOAT_NOISE = re.compile(r"(?<![\w.])\d+\.\d{13,}(?:e[-+]?\d+)?(?![\w.])")


def job_folder(overrides: str) -> str:
    """runs/<experiment>/<this>: the job's overrides (Hydra's override_dirname, without the keys that do not change
    what a run computes), e.g. `model.norm=none,optim.lr=0.1,seed=2`; `default` for none. A float's binary noise,
    as a range(0.1,0.5,0.1) sweep makes it (0.30000000000000004), is rounded to 12 digits in the name only."""
    name = FLOAT_NOISE.sub(lambda m: f"{float(m.group()):.12g}", overrides.replace("/", "_").strip()) or "default"
    if len(name) > 120:  # file systems cap a name at 255 bytes; the hash keeps long names distinct
        name = f"{name[:100]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name


def lr_for_batch(lr: float, batch: int, batch_size: int) -> float:
    """${lr_for_batch:LR,BATCH,BATCH_SIZE}: LR at BATCH scaled linearly to BATCH_SIZE (Goyal et al. 2017's rule;
    configs/experiment/mnist_batch_size_scaled_lr.yaml)."""
    return float(lr) * int(batch_size) / int(batch)


# configs/data/*.yaml: root: ${data_root:}; configs/train.yaml: hydra.run.dir and hydra.sweep.dir
OmegaConf.register_new_resolver("data_root", default_data_root, replace=True)
OmegaConf.register_new_resolver("lr_for_batch", lr_for_batch, replace=True)
OmegaConf.register_new_resolver("experiment_folder", experiment_folder, replace=True)
OmegaConf.register_new_resolver("job_folder", job_folder, replace=True)
