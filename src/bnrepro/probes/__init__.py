"""Measurements taken during training. A probe never changes training: no draws from the training
RNG streams, no BN running-statistic updates, no autograd graph."""

from bnrepro.probes.percentiles import ActivationProbe, percentiles

__all__ = ["ActivationProbe", "percentiles"]
