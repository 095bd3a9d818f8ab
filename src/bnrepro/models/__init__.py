from omegaconf import DictConfig
from torch import nn

from bnrepro.models.mlp import ACTIVATIONS, INITS, MLP, NORMS

__all__ = ["ACTIVATIONS", "INITS", "NORMS", "MLP", "build_model"]


def build_model(cfg: DictConfig) -> nn.Module:
    if cfg.name == "mlp":
        return MLP(
            in_features=cfg.in_features,
            hidden=tuple(cfg.hidden),
            num_classes=cfg.num_classes,
            norm=cfg.norm,
            activation=cfg.activation,
            init=cfg.init,
            init_std=cfg.init_std,
            bn_eps=cfg.bn_eps,
            bn_momentum=cfg.bn_momentum,
        )
    raise ValueError(f"unknown model {cfg.name!r}")
