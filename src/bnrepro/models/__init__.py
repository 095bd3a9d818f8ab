import dataclasses

from torch import nn

from bnrepro.models.dln import DeepLinear
from bnrepro.models.lp_norm import LpNorm
from bnrepro.models.mlp import ACTIVATIONS, INITS, MLP
from bnrepro.models.mlp_fused import loss_and_grad as fused_loss_and_grad
from bnrepro.models.mlp_fused import supports_fused
from bnrepro.models.noisy_bn import DRAWS, POSITIONS, NoisyBatchNorm
from bnrepro.models.norms import NORM_LAYERS, NORMS, build_norm
from bnrepro.models.vgg import VGG, VGG16

__all__ = ["ACTIVATIONS", "DRAWS", "INITS", "MODELS", "NORMS", "NORM_LAYERS", "POSITIONS", "MLP",
           "VGG", "VGG16",
           "DeepLinear", "LpNorm", "NoisyBatchNorm", "build_model", "build_norm", "fused_loss_and_grad",
           "layer_weight", "supports_fused"]

# model=<name> (config.schema: MLP, VGG, DLN) holds `name` plus exactly the constructor's keyword arguments.
MODELS = {"mlp": MLP, "vgg": VGG, "dln": DeepLinear}


def build_model(cfg) -> nn.Module:
    """cfg: the model group, as its schema's object."""
    kwargs = dataclasses.asdict(cfg)
    return MODELS[kwargs.pop("name")](**kwargs)


def layer_weight(layer: nn.Module) -> nn.Parameter:
    """W_i of a layer from `model.layers()`: its (first) linear or conv weight."""
    for m in layer.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            return m.weight
    raise ValueError(f"{type(layer).__name__} has no linear or conv weight")
