"""The deep linear network of Santurkar et al. 2018 (section 3, Appendix A): 25 linear 10x10 layers.

Layer #i is Linear (no bias by default: the network computes W_25...W_1 x), then the chosen normalisation for
every layer but the last, whose output is the prediction. `taps` names the output of each layer (after its
normalisation), which the activation probe records.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from bnrepro.models.norms import build_norm


class DeepLinear(nn.Module):
    ICS_LAYERS = (9, 17)  # Santurkar's deep linear network figures

    def __init__(self, depth: int = 25, width: int = 10, in_features: int = 10, out_features: int = 10,
                 norm: str = "none", bias: bool = False, bn_eps: float = 1e-5, bn_momentum: float = 0.1,
                 noise: dict | None = None):
        super().__init__()
        blocks, fan_in = [], in_features
        for i in range(1, depth + 1):
            last = i == depth
            fan_out = out_features if last else width
            blocks.append(nn.Sequential(OrderedDict(
                linear=nn.Linear(fan_in, fan_out, bias=bias),
                norm=nn.Identity() if last else build_norm(norm, fan_out, eps=bn_eps, momentum=bn_momentum,
                                                           noise=noise, index=i),
                out=nn.Identity(),  # a tap point: no nonlinearity in a linear network
            )))
            fan_in = fan_out
        self.blocks = nn.ModuleList(blocks)
        for block in self.blocks:  # Glorot, as in the paper
            nn.init.xavier_uniform_(block.linear.weight)
            if bias:
                nn.init.zeros_(block.linear.bias)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x

    def layers(self) -> list[nn.Module]:
        return list(self.blocks)

    def taps(self) -> dict[str, nn.Module]:
        return {f"layer{i}": block.out for i, block in enumerate(self.blocks, start=1)}
