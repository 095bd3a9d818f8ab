"""lp-normalisation (Santurkar section 3.3): the formula written in models/lp_norm.py, checked on its own terms."""

import math

import pytest
import torch

from bnrepro.models import VGG, DeepLinear, LpNorm, build_norm
from bnrepro.probes import frozen_norm_stats

P = {"l1": 1.0, "l2": 2.0, "linf": math.inf}


def power_mean(v: torch.Tensor, p: float, dims) -> torch.Tensor:
    return v.abs().amax(dims) if p == math.inf else v.abs().pow(p).mean(dims).pow(1 / p)


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["l1", "l2", "linf"])
@pytest.mark.parametrize("shape", [(64, 5), (8, 5, 3, 3)])
def test_outputs_have_the_stated_norms(kind, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64) * 3 + 2  # off-centre, so the mean shift matters
    norm = build_norm(kind, 5, conv=len(shape) == 4, eps=0.0).double()
    y = norm(x)
    dims = [0] + list(range(2, x.dim()))
    shape_c = [1, -1] + [1] * (x.dim() - 2)
    mu = x.mean(dims)
    s = power_mean(x, P[kind], dims)  # computed before the mean shift
    # y is centred ...
    assert torch.allclose(y.mean(dims), torch.zeros(5, dtype=torch.float64), atol=1e-12)
    # ... and y + mu/s, i.e. x/s, has average lp norm exactly 1 per channel
    uncentred = y + (mu / s).view(shape_c)
    assert torch.allclose(power_mean(uncentred, P[kind], dims), torch.ones(5, dtype=torch.float64), rtol=1e-12)
    assert torch.allclose(y, (x - mu.view(shape_c)) / s.view(shape_c), rtol=1e-12)


@pytest.mark.unit
def test_l2_on_centred_inputs_is_batch_norm():
    torch.manual_seed(0)
    x = torch.randn(256, 4, dtype=torch.float64)
    x = x - x.mean(0)
    bn = torch.nn.BatchNorm1d(4, eps=1e-300).double()
    assert torch.allclose(build_norm("l2", 4, eps=0.0).double()(x), bn(x), atol=1e-12)


@pytest.mark.integration
def test_affine_running_statistics_and_eval():
    torch.manual_seed(0)
    norm = LpNorm(3, 1.0, momentum=1.0)  # momentum 1: the running statistics are the last batch's
    with torch.no_grad():
        norm.weight.fill_(2.0)
        norm.bias.fill_(0.5)
    x = torch.randn(32, 3)
    y_train = norm(x)
    assert torch.allclose(norm.running_mean, x.mean(0)) and torch.allclose(norm.running_scale, x.abs().mean(0))
    norm.eval()
    assert torch.allclose(norm(x), y_train, atol=1e-6)  # eval with the same batch's statistics: the same output
    norm.train()
    before = norm.running_scale.clone()
    with frozen_norm_stats(norm, "batch"):
        norm(x * 10)
    assert torch.equal(norm.running_scale, before)  # probes never update it


@pytest.mark.unit
def test_available_in_vgg_and_dln():
    vgg = VGG(width=0.0625, norm="linf")
    assert sum(isinstance(m, LpNorm) for m in vgg.modules()) == 13
    assert vgg(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    dln = DeepLinear(norm="l1")
    assert sum(isinstance(m, LpNorm) and m.p == 1 for m in dln.modules()) == 24
