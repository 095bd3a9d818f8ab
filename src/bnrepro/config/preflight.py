"""Checks that run before Hydra writes anything: every job's config values (plan.resolve), its values against the
dataset's sizes, and whether its output folder can be created. A bad value ends the command with exit code 2 and
one line naming the key, and leaves no folder behind. Wired in configs/train.yaml (hydra.callbacks)."""

from __future__ import annotations

import difflib
import itertools
import os
import sys
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from bnrepro import EXIT_REFUSED, BnreproError, ConfigError
from bnrepro.config.check import check_against_data
from bnrepro.config.plan import resolve
from bnrepro.config.schema import GROUPS as SCHEMA_GROUPS
from bnrepro.data import sizes
from bnrepro.io_utils import unwritable_reason
from bnrepro.paths import PROJECT_ROOT
from bnrepro.runfolder import busy_message, holder
from bnrepro.signals import LAUNCHER_ENV

GROUPS = {p.name for p in (PROJECT_ROOT / "configs").iterdir() if p.is_dir()} | set(SCHEMA_GROUPS)


def fail(message: str) -> None:
    print(f"bnrepro: error: {message}", file=sys.stderr)
    sys.exit(EXIT_REFUSED)


def keys(node, prefix: str = "") -> list[str]:
    """Every dotted key of a config."""
    out = []
    for k in node:
        path = f"{prefix}{k}"
        out.append(path)
        if isinstance(node.get(k), DictConfig):
            out += keys(node[k], f"{path}.")
    return out


def check_additions(config: DictConfig, loader) -> None:
    """`+key=value` adds a key, and every key this project reads is already in its config groups: an added one is a
    typo (Hydra's own error for a misspelt key suggests the `+`), which would otherwise be accepted and ignored."""
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(list(config.hydra.overrides.task))
    for o in parsed:
        key = o.key_or_group
        if o.is_add() and key.split(".")[0] != "hydra" and key.split("/")[0] not in GROUPS:
            known = [k for k in keys(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]))
                     if k != key]
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            fail(f"+{key} adds a key that no config of this project reads{hint}: set an existing key, without the +")


def check_writable(key: str, folder: str) -> None:
    reason = unwritable_reason(Path(folder))
    if reason is not None:
        raise ConfigError(f"{key}={folder} cannot be created: {reason}")


def check(cfg: DictConfig, key: str, folder: str, job: str = "", seen: dict | None = None) -> None:
    """`seen`: the data sizes already read in this sweep, by data config (the jobs of a sweep share a few)."""
    try:
        config = resolve(cfg).config
        data = repr(config.data)
        seen = {} if seen is None else seen
        if data not in seen:
            seen[data] = sizes(config.data)
        check_against_data(config, seen[data])
        check_writable(key, folder)
    except BnreproError as e:
        fail(f"{job}{e}")


def sweep_values(override: Override) -> list[str]:
    """`key=value` for the values a sweeper can give this override: every value of a list, choice() or range(), and
    both ends of an interval() (Optuna's and other sweepers' syntax). The rules on numbers are bounds, so the two
    ends decide whether every value between them passes."""
    key = override.get_key_element()
    if not override.is_sweep_override():
        return [f"{key}={override.get_value_element_as_str()}"]
    if override.is_interval_sweep():
        interval = override.value()
        return [f"{key}={interval.start}", f"{key}={interval.end}"]
    return [f"{key}={value}" for value in override.sweep_string_iterator()]


def sweep_jobs(overrides: list[Override]) -> list[list[str]]:
    """Every combination of the overrides' values; a key given twice takes its last value (the command line's
    overrides come after hydra.sweeper.params)."""
    values = {o.get_key_element(): sweep_values(o) for o in overrides}
    return [list(job) for job in itertools.product(*values.values())]


class Preflight(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        """A single run: checked before Hydra creates hydra.run.dir (or writes into it, when another process runs the
        same job there)."""
        check_additions(config, GlobalHydra.instance().config_loader())
        check(config, "hydra.run.dir", config.hydra.run.dir)
        pid = holder(Path(config.hydra.run.dir))
        if pid is not None:
            fail(busy_message(Path(config.hydra.run.dir), pid))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """A sweep: every job of the grid (hydra.sweeper.params and the command line), or for a search space
        (interval(), as Optuna's sweeper reads it) every corner of it, composed as the sweeper will compose it and
        checked before the sweep folder exists, so one bad job stops the sweep before any job has run. The workers
        the launcher starts inherit its pid, and end with it (signals.end_with_launcher)."""
        loader = GlobalHydra.instance().config_loader()
        check_additions(config, loader)
        os.environ[LAUNCHER_ENV] = str(os.getpid())
        params = config.hydra.sweeper.get("params") or {}
        arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
        overrides = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
        seen: dict = {}
        for job in sweep_jobs(overrides):
            cfg = loader.load_sweep_config(config, job)
            check(cfg, "hydra.sweep.dir", config.hydra.sweep.dir, job=f"job [{' '.join(job)}]: ", seen=seen)
