"""'Noisy' batch normalisation: Santurkar et al. 2018, Algorithm 1.

BN normalises, then at every training step a time-varying, non-Gaussian distortion is applied:
  per step and channel:       mu ~ U(-n_mu, n_mu),        sigma ~ U(1, n_sigma)
  per sample and position:    m  ~ U(mu - r_mu, mu + r_mu), s ~ N(sigma, r_sigma)
  a  ->  s * a + m
For conv layers the paper counts height and width as batch, which reads as one m and s per sample, channel and
position (`draw="position"`, the default); its text also allows one per sample and channel, shared over the
positions (`draw="channel"`), which injects far less noise per step. The paper leaves open whether the noise comes
before or after BN's learned gamma/beta; `position` chooses ("pre_affine", the default, or "post_affine"). The
noise is off in eval mode, and draws from the module's own generator, so switching it on never changes the data
order or any other RNG stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POSITIONS = ("pre_affine", "post_affine")
DRAWS = ("position", "channel")


class NoisyBatchNorm(nn.modules.batchnorm._BatchNorm):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, n_mu: float = 0.5,
                 n_sigma: float = 1.25, r_mu: float = 0.1, r_sigma: float = 0.1, position: str = "pre_affine",
                 seed: int = 0, draw: str = "position"):
        super().__init__(num_features, eps=eps, momentum=momentum)
        # Valid ranges: config.validate (position in POSITIONS, draw in DRAWS, n_mu >= 0, n_sigma >= 1, r_mu >= 0,
        # r_sigma >= 0).
        self.n_mu, self.n_sigma, self.r_mu, self.r_sigma = n_mu, n_sigma, r_mu, r_sigma
        self.position, self.seed, self.draw = position, seed, draw
        # Training draws from the "train" stream; probes switch to "probe" (fresh noise), "replay" (a copy of the
        # noise a training step drew) or "same" (the same noise at every forward, so that two probes of one batch
        # differ only by the network), so that measuring never shifts the noise that training sees.
        self.stream = "train"
        self._gens: dict[str, torch.Generator] = {}

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D-5D input (got {x.dim()}D)")

    def generator(self, device: torch.device) -> torch.Generator:
        if self.stream == "same":
            return torch.Generator(device=device).manual_seed(self.seed + 2_000_003)
        return self._stream_generator(self.stream, device)

    def streams(self) -> dict[str, torch.Generator]:
        """The generators a checkpoint saves: the training noise and the probes' own."""
        return {stream: self._stream_generator(stream, self.weight.device) for stream in ("train", "probe")}

    def _stream_generator(self, stream: str, device: torch.device) -> torch.Generator:
        g = self._gens.get(stream)
        if g is None or g.device != device:
            g = torch.Generator(device=device)
            g.manual_seed(self.seed if stream == "train" else self.seed + 1_000_003)
            self._gens[stream] = g
        return g

    def snapshot(self) -> torch.Tensor:
        """The training stream's state: replay(state) later redraws exactly the noise the next training forward gets."""
        return self._stream_generator("train", self.weight.device).get_state()

    def replay(self, state: torch.Tensor) -> None:
        """Draw from a copy of a snapshot (the probes' view of a training step); the training stream is untouched."""
        g = torch.Generator(device=self.weight.device)
        g.set_state(state)
        self._gens["replay"], self.stream = g, "replay"

    def sample_noise(self, shape: torch.Size, device: torch.device, dtype: torch.dtype):
        """One training step's (s, m), with the per-channel (sigma, mu) they were drawn around."""
        g = self.generator(device)
        c = shape[1]
        per_channel = [1, c] + [1] * (len(shape) - 2)
        mu = (torch.rand(c, generator=g, device=device, dtype=dtype) * 2 - 1) * self.n_mu
        sigma = 1 + torch.rand(c, generator=g, device=device, dtype=dtype) * (self.n_sigma - 1)
        drawn = shape if self.draw == "position" else torch.Size([*shape[:2]] + [1] * (len(shape) - 2))
        m = mu.view(per_channel) + (torch.rand(drawn, generator=g, device=device, dtype=dtype) * 2 - 1) * self.r_mu
        s = sigma.view(per_channel) + torch.randn(drawn, generator=g, device=device, dtype=dtype) * self.r_sigma
        return s, m, sigma, mu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        self._check_input_dim(x)
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
        track = self.track_running_stats
        a = F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                         None, None, True, self.momentum, self.eps)
        # Drawn in float32 under autocast too: bf16 would round the noise itself (its r = 0.1 spreads to ~1e-2).
        s, m, _, _ = self.sample_noise(a.shape, a.device, torch.float32)
        per_channel = [1, -1] + [1] * (x.dim() - 2)
        weight, bias = self.weight.view(per_channel), self.bias.view(per_channel)
        if self.position == "pre_affine":
            return (s * a + m) * weight + bias
        return s * (a * weight + bias) + m
