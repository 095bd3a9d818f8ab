"""A VGG-style CNN for 32x32 inputs (Santurkar et al. 2018, Appendix A): conv3x3 -> [norm] -> ReLU blocks (or
another model.activation)
with max-pooling, then a linear classifier. Conv layers are numbered from 1, as in the paper."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from bnrepro.models.mlp import ACTIVATIONS
from bnrepro.models.norms import build_norm, ordered

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    ICS_LAYERS = (5, 10)  # Santurkar Fig 3

    def __init__(self, layers: Sequence = VGG16, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                 norm: str = "none", width: float = 1.0, bn_eps: float = 1e-5, bn_momentum: float = 0.1,
                 noise: dict | None = None, norm_position: str = "pre", affine: bool = True,
                 activation: str = "relu"):
        super().__init__()
        features, channels, size, n_conv = [], in_channels, image_size, 0
        for item in layers:
            if item == "M":
                features.append(nn.MaxPool2d(2))
                size //= 2
                continue
            n_conv += 1
            out = max(1, round(int(item) * width))
            features.append(nn.Sequential(OrderedDict(
                conv=nn.Conv2d(channels, out, 3, padding=1),
                **ordered(norm_position, build_norm(norm, out, conv=True, eps=bn_eps, momentum=bn_momentum,
                                                    noise=noise, index=n_conv, affine=affine),
                        ACTIVATIONS[activation]()),
            )))
            channels = out
        self.features = nn.Sequential(*features)
        self.classifier = nn.Linear(channels * size * size, num_classes)
        for m in self.modules():  # Glorot, as in the paper's appendix
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))

    def convs(self) -> list[nn.Sequential]:
        return [b for b in self.features if isinstance(b, nn.Sequential)]

    def layers(self) -> list[nn.Module]:
        """Layer #i (from 1): conv layer #i with its normalisation; the classifier last."""
        return [*self.convs(), self.classifier]

    def taps(self) -> dict[str, nn.Module]:
        """The ReLU of conv layer #i, whose input is the layer's output before the nonlinearity."""
        return {f"layer{i}": block.act for i, block in enumerate(self.convs(), start=1)}
