"""Checks that run before Hydra writes anything: every job's config values (plan.resolve), its values against the
dataset's sizes, and whether its output folder can be created. A bad value ends the command with exit code 2 and
one line naming the key, and leaves no folder behind. Wired in configs/train.yaml (hydra.callbacks)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from bnrepro import BnreproError, ConfigError
from bnrepro.config import validate_against_data
from bnrepro.data import sizes
from bnrepro.plan import resolve


def fail(message: str) -> None:
    print(f"bnrepro: error: {message}", file=sys.stderr)
    sys.exit(2)


def check_writable(key: str, folder: str) -> None:
    """The folder exists and is writable, or its nearest existing parent is a writable folder."""
    path = Path(folder).expanduser().absolute()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    # The mode bits as well: root may write anywhere, but a folder made read-only is meant to stay untouched.
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK) or not probe.stat().st_mode & 0o222:
        what = "is not a folder" if not probe.is_dir() else "is not writable"
        raise ConfigError(f"{key}={folder} cannot be created: {probe} {what}")


def check(cfg: DictConfig, key: str, folder: str, job: str = "", seen: dict | None = None) -> None:
    """`seen`: the data sizes already read in this sweep, by data config (the jobs of a sweep share a few)."""
    try:
        resolve(cfg)
        data = OmegaConf.to_yaml(cfg.data, resolve=True)
        seen = {} if seen is None else seen
        if data not in seen:
            seen[data] = sizes(cfg.data)
        validate_against_data(cfg, seen[data])
        check_writable(key, folder)
    except BnreproError as e:
        fail(f"{job}{e}")


class Preflight(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        """A single run: checked before Hydra creates hydra.run.dir."""
        check(config, "hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """A sweep: every job composed as the basic sweeper will compose it (the grid of hydra.sweeper.params and
        the command line) and checked before the sweep folder exists, so one bad job stops the sweep before any
        job has run."""
        loader = GlobalHydra.instance().config_loader()
        params = config.hydra.sweeper.get("params") or {}
        arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
        overrides = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
        seen: dict = {}
        for batch in BasicSweeper.split_arguments(overrides, None):
            for job in batch:
                cfg = loader.load_sweep_config(config, list(job))
                check(cfg, "hydra.sweep.dir", config.hydra.sweep.dir, job=f"job [{' '.join(job)}]: ", seen=seen)
