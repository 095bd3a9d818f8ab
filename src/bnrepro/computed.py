"""What a run computes, as a config: the keys that change nothing computed are left out, and a config stored before
a key existed is migrated to the value it computed with. A run found again by its folder (a finished one is skipped,
an interrupted one resumes from its checkpoint) is compared with the command's config on this, and nothing else."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bnrepro.paths import PROJECT_ROOT

# Keys that change nothing a run computes (where things are, how it is shown or launched). Written once, in
# configs/train.yaml, as the keys Hydra leaves out of a job folder's name (override_dirname's exclude_keys).
NOT_COMPUTED = tuple(OmegaConf.load(PROJECT_ROOT / "configs" / "train.yaml")
                     .hydra.job.config.override_dirname.exclude_keys)


# Keys added after runs were stored: (key, the value a config stored before it computed with, the configs the key
# belongs to, as {key: allowed values}). `migrate` adds each to a stored config that lacks it, where the key's
# parent exists and the condition holds: the configs that carry the key today (tests/test_resume.py checks that
# against every model option).
MIGRATIONS = (
    ("trainer.tf32", False, {}),
    ("trainer.compile", None, {}),
    ("trainer.eval_train", 0, {}),
    ("probe.affine", False, {}),
    ("probe.shift", None, {}),
    ("data.x_std", 1.0, {"data.format": ("linear",)}),
    ("data.a_std", 1.0, {"data.format": ("linear",)}),
    ("data.target_loss", None, {"data.format": ("linear",)}),
    ("model.norm_position", "pre", {"model.name": ("mlp", "vgg")}),
    ("model.affine", True, {"model.name": ("mlp", "vgg")}),
    ("model.activation", "relu", {"model.name": ("vgg",)}),  # the MLP always had it
    ("model.noise.draw", "position", {}),
)


def migrate(cfg: DictConfig) -> DictConfig:
    """A copy of a stored config with every key added since it was written, at the value it computed with."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for key, value, where in MIGRATIONS:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent)
        if isinstance(node, DictConfig) and leaf not in node and all(
                OmegaConf.select(cfg, k) in allowed for k, allowed in where.items()):
            node[leaf] = value
    return cfg


def computed(cfg: DictConfig) -> dict:
    """The config without the keys that change nothing computed, as a plain dict (compared without regard to order)."""
    c = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for key in NOT_COMPUTED:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(c, parent) if parent else c
        if isinstance(node, DictConfig) and leaf in node:
            del node[leaf]
    return OmegaConf.to_container(c)


def config_text(cfg: DictConfig) -> str:
    """What a run computes, as the text a checkpoint stores."""
    return OmegaConf.to_yaml(OmegaConf.create(computed(cfg)))


def same_computation(cfg: DictConfig, stored: DictConfig | str) -> bool:
    """Whether a stored config (a run folder's config_resolved.yaml, or a checkpoint's text) computes what `cfg`
    computes."""
    stored = OmegaConf.create(stored) if isinstance(stored, str) else stored
    return computed(migrate(stored)) == computed(cfg)


def load_stored(path: Path) -> DictConfig:
    """A run folder's config_resolved.yaml, migrated."""
    return migrate(OmegaConf.load(path))
