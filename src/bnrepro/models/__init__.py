from omegaconf import DictConfig, OmegaConf
from torch import nn

from bnrepro.models.mlp import ACTIVATIONS, INITS, MLP, NORMS
from bnrepro.models.noisy_bn import POSITIONS, NoisyBatchNorm
from bnrepro.models.vgg import CONV_NORMS, VGG, VGG16

__all__ = ["ACTIVATIONS", "CONV_NORMS", "INITS", "MODELS", "NORMS", "POSITIONS", "MLP", "VGG", "VGG16",
           "NoisyBatchNorm", "build_model"]

# configs/model/<name>.yaml holds `name` plus exactly the constructor's keyword arguments.
MODELS = {"mlp": MLP, "vgg": VGG}


def build_model(cfg: DictConfig) -> nn.Module:
    kwargs = OmegaConf.to_container(cfg, resolve=True)
    return MODELS[kwargs.pop("name")](**kwargs)
