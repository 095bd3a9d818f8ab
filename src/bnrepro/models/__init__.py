from omegaconf import DictConfig, OmegaConf
from torch import nn

from bnrepro.models.mlp import ACTIVATIONS, INITS, MLP, NORMS
from bnrepro.models.noisy_bn import POSITIONS, NoisyBatchNorm
from bnrepro.models.vgg import CONV_NORMS, VGG, VGG16

__all__ = ["ACTIVATIONS", "CONV_NORMS", "INITS", "NORMS", "POSITIONS", "MLP", "VGG", "VGG16", "NoisyBatchNorm",
           "build_model"]


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
    if cfg.name == "vgg":
        return VGG(
            layers=list(cfg.layers),
            in_channels=cfg.in_channels,
            num_classes=cfg.num_classes,
            image_size=cfg.image_size,
            norm=cfg.norm,
            width=cfg.width,
            bn_eps=cfg.bn_eps,
            bn_momentum=cfg.bn_momentum,
            noise=OmegaConf.to_container(cfg.noise, resolve=True),
        )
    raise ValueError(f"unknown model {cfg.name!r}")
