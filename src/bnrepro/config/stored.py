"""What a run computes, as a config: the keys that change nothing computed are left out, and a config stored before
a key existed is migrated to the value it computed with. A run found again by its folder (a finished one is skipped,
an interrupted one resumes from its checkpoint) is compared with the command's config on this, and nothing else.
tests/test_config.py checks that runs stored today are still found: a key added without its migration fails it."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bnrepro.config.schema import Config
from bnrepro.paths import PROJECT_ROOT

# Keys that change nothing a run computes (where things are, how it is shown or launched). Written once, in
# configs/train.yaml, as the keys Hydra leaves out of a job folder's name (override_dirname's exclude_keys).
NOT_COMPUTED = tuple(OmegaConf.load(PROJECT_ROOT / "configs" / "train.yaml")
                     .hydra.job.config.override_dirname.exclude_keys)


# Keys added after runs were stored: (key, the value a config stored before it computed with, the configs the key
# belongs to, as {key: allowed values}). `migrate` adds each to a stored config that lacks it, where the key's
# parent exists and the condition holds.
MIGRATIONS = (
    ("trainer.tf32", False, {}),
    ("trainer.compile", None, {}),
    ("trainer.eval_train", 0, {}),
    ("probe.affine", False, {}),
    ("probe.shift", None, {}),
    ("probe.init", False, {}),
    ("probe.weights", False, {}),
    ("optim.warmup_steps", 0, {}),
    ("data.x_std", 1.0, {"data.format": ("linear",)}),
    ("data.a_std", 1.0, {"data.format": ("linear",)}),
    ("data.target_loss", None, {"data.format": ("linear",)}),
    ("model.norm_position", "pre", {"model.name": ("mlp", "vgg")}),
    ("model.affine", True, {"model.name": ("mlp", "vgg")}),
    ("model.activation", "relu", {"model.name": ("vgg",)}),  # the MLP always had it
    ("model.noise.draw", "position", {}),
)


def parent(values: dict, key: str) -> tuple[dict | None, str]:
    """The mapping that holds a dotted key (None where there is none), and the key's last part."""
    *parents, leaf = key.split(".")
    for part in parents:
        values = values.get(part) if isinstance(values, dict) else None
    return (values if isinstance(values, dict) else None), leaf


def select(values: dict, key: str):
    node, leaf = parent(values, key)
    return None if node is None else node.get(leaf)


def migrate(values: dict) -> dict:
    """A copy of a stored config with every key added since it was written, at the value it computed with."""
    values = copy.deepcopy(values)
    for key, old, where in MIGRATIONS:
        node, leaf = parent(values, key)
        if node is not None and leaf not in node and all(select(values, k) in ok for k, ok in where.items()):
            node[leaf] = old
    return values


def computed(values: dict) -> dict:
    """A config without the keys that change nothing computed (compared without regard to order)."""
    values = copy.deepcopy(values)
    for key in NOT_COMPUTED:
        node, leaf = parent(values, key)
        if node is not None:
            node.pop(leaf, None)
    return values


def config_text(config: Config) -> str:
    """What a run computes, as the text a checkpoint stores."""
    return OmegaConf.to_yaml(computed(dataclasses.asdict(config)))


def same_computation(config: Config, stored: DictConfig | str) -> bool:
    """Whether a stored config (a run folder's config_resolved.yaml, or a checkpoint's text) computes what `config`
    computes."""
    stored = OmegaConf.create(stored) if isinstance(stored, str) else stored
    return computed(migrate(OmegaConf.to_container(stored))) == computed(dataclasses.asdict(config))


def load_stored(path: Path) -> DictConfig:
    """A run folder's config_resolved.yaml, migrated."""
    return OmegaConf.create(migrate(OmegaConf.to_container(OmegaConf.load(path))))
