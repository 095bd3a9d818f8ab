"""The fully connected network of Ioffe & Szegedy 2015, section 4.1: Linear -> [norm] -> activation per hidden layer
(or Linear -> activation -> [norm] with norm_position='post')."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from bnrepro.models.norms import build_norm, ordered

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def _gaussian(weight: torch.Tensor, std: float) -> None:
    nn.init.normal_(weight, 0.0, std)


def _glorot(weight: torch.Tensor, std: float) -> None:
    nn.init.xavier_uniform_(weight)


INITS = {"gaussian": _gaussian, "glorot": _glorot}


class MLP(nn.Module):
    ICS_LAYERS = (2, 3)  # the ICS probe's default layers

    def __init__(
        self,
        in_features: int = 784,
        hidden: tuple[int, ...] = (100, 100, 100),
        num_classes: int = 10,
        norm: str = "none",
        activation: str = "sigmoid",
        init: str = "gaussian",
        init_std: float = 0.1,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        noise: dict | None = None,
        norm_position: str = "pre",
        affine: bool = True,
    ):
        super().__init__()
        blocks, width = [], in_features
        for i, h in enumerate(hidden, start=1):
            blocks.append(
                nn.Sequential(
                    OrderedDict(
                        linear=nn.Linear(width, h),
                        **ordered(norm_position,
                                  build_norm(norm, h, eps=bn_eps, momentum=bn_momentum, noise=noise, index=i,
                                             affine=affine),
                                  ACTIVATIONS[activation]()),
                    )
                )
            )
            width = h
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(width, num_classes)
        for linear in [b.linear for b in self.blocks] + [self.head]:
            INITS[init](linear.weight, init_std)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def layers(self) -> list[nn.Module]:
        """Layer #i (from 1) and everything it owns (weights, normalisation), the output layer last."""
        return [*self.blocks, self.head]

    def taps(self) -> dict[str, nn.Module]:
        """The activation modules whose *input* the probes record, named layer1..layerN (paper numbering)."""
        return {f"layer{i}": block.act for i, block in enumerate(self.blocks, start=1)}
