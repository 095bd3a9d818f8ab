"""The config layer, from what Hydra composes to what a run receives:

- schema.py: every key, its type, range and default (one dataclass per group option);
- hydra.py: `register` (the schemas into Hydra's ConfigStore, the resolvers configs/ use) and `compose`;
- check.py: `check`, the composed config as the schema's objects with every rule checked;
- plan.py: `resolve`, a run's Plan (its checked config and what follows from it);
- preflight.py: the Hydra callback that checks every job before anything is written;
- stored.py: what a run computes, compared with a stored run's config (migrated for keys added since).
"""

from bnrepro.config.hydra import compose, register
from bnrepro.config.plan import Plan, resolve
from bnrepro.config.schema import Config

__all__ = ["Config", "Plan", "compose", "register", "resolve"]
