"""lp-normalisation (Santurkar et al. 2018, section 3.3): BN's centring, with the scale taken from an lp norm.

Per channel c, over the batch (and, for conv layers, every spatial position), with n values x_1..x_n:

    mu_c    = mean(x)
    s_c     = (mean(|x|^p))^(1/p)      p = 1, 2;   s_c = max(|x|)   p = inf
    y       = gamma_c * (x - mu_c) / (s_c + eps) + beta_c

s_c is the channel's lp norm divided by n^(1/p), i.e. the average lp norm per value, so that it does not grow
with the batch size; it is computed on x *before* the mean shift, as the paper states. With p = 2 it is the
uncentred root mean square, BN's standard deviation without the centring. The paper leaves the exact formula
partly open; this is the choice made here (README, "lp-normalisation"). In eval mode, running averages of mu and
s replace the batch's, as BN's running statistics do.
"""

from __future__ import annotations

import math

import torch
from torch import nn

P_OF = {"l1": 1.0, "l2": 2.0, "linf": math.inf}


def lp_scale(x: torch.Tensor, p: float, dims: list[int]) -> torch.Tensor:
    """(mean |x|^p)^(1/p) over `dims` (max |x| for p = inf)."""
    a = x.abs()
    if p == math.inf:
        return a.amax(dims)
    if p == 1:
        return a.mean(dims)
    return a.pow(p).mean(dims).pow(1.0 / p)


class LpNorm(nn.Module):
    def __init__(self, num_features: int, p: float, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if not (p >= 1):
            raise ValueError(f"p={p} must be >= 1")
        self.num_features, self.p, self.eps, self.momentum = num_features, float(p), eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_scale", torch.ones(num_features))
        # As in BN: probes switch this off to normalise with batch statistics without updating the running ones.
        self.track_running_stats = True

    def extra_repr(self) -> str:
        return f"{self.num_features}, p={self.p:g}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.training or not self.track_running_stats:
            dims = [0] + list(range(2, x.dim()))
            mean, scale = x.mean(dims), lp_scale(x, self.p, dims)
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                    self.running_scale.lerp_(scale.detach().to(self.running_scale.dtype), self.momentum)
        else:
            mean, scale = self.running_mean, self.running_scale
        y = (x - mean.view(shape)) / (scale.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)
