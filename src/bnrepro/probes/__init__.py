"""Measurements taken during training. A probe never changes training: no draws from the training
RNG streams, no updates of normalisation layers' running statistics, no writes to weights or gradients."""

from bnrepro.probes.context import NoiseReplay, frozen_norm_stats
from bnrepro.probes.ics import ICSProbe
from bnrepro.probes.init import InitProbe, effective_rank
from bnrepro.probes.landscape import LandscapeProbe, eta_grid
from bnrepro.probes.percentiles import ActivationProbe, percentiles
from bnrepro.probes.weights import WeightProbe

__all__ = ["ActivationProbe", "ICSProbe", "InitProbe", "LandscapeProbe", "NoiseReplay", "effective_rank", "eta_grid",
           "frozen_norm_stats", "percentiles", "WeightProbe"]
