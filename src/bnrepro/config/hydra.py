"""What Hydra needs of this project before it composes configs/train.yaml: the schemas in its ConfigStore (`model=vgg`
is config.schema.VGG) and the resolvers configs/ use. `register` puts them there; `compose` composes as
experiments/train.py does, for the figures' specs, the benchmarks and the tests."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from datetime import datetime

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from bnrepro.config.schema import BASES, GROUPS, OPTIONS, Config
from bnrepro.paths import PROJECT_ROOT, default_data_root

TOP = "base_train"  # configs/train.yaml's own keys, first in its defaults list


def experiment_folder(experiment: str | None, fresh: bool = False, sweeper: str | None = None) -> str:
    """runs/<this>/...: the experiment config's name; fresh=true adds the time, for a folder no run has used. A
    search (hydra/sweeper=optuna) gets a folder of its own, named by the sweeper and the time: its trials are
    chosen as it goes, and its multirun.yaml must not replace another sweep's."""
    name = str(experiment) if experiment else "default"
    if sweeper not in (None, "", "basic"):
        return f"{name}@{sweeper}-{started():%Y-%m-%d_%H-%M-%S-%f}"
    return f"{name}@{started():%Y-%m-%d_%H-%M-%S-%f}" if fresh else name


@functools.cache
def started() -> datetime:
    """The command's start, once per process: Hydra resolves the folder's name again for every job and trial."""
    return datetime.now()


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


# configs/train.yaml: hydra.run.dir and hydra.sweep.dir; the data schemas: root; mnist_batch_size_scaled_lr: optim.lr
RESOLVERS = {"data_root": default_data_root, "experiment_folder": experiment_folder, "job_folder": job_folder,
             "lr_for_batch": lr_for_batch}


def register() -> None:
    """Every group option's schema and the resolvers, where Hydra and OmegaConf look for them. Sweep workers receive
    both with the rest of Hydra's state."""
    store = ConfigStore.instance()
    for (group, name), schema in {**OPTIONS, **BASES}.items():
        store.store(group=group, name=name, node=dataclasses.asdict(schema()))
    store.store(name=TOP, node={k: v for k, v in dataclasses.asdict(Config()).items() if k not in GROUPS})
    for name, resolver in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, resolver, replace=True)


def compose(*overrides: str, return_hydra_config: bool = False) -> DictConfig:
    """configs/train.yaml with these overrides, composed as experiments/train.py composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides), return_hydra_config=return_hydra_config)
