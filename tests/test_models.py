import pytest
import torch
from torch import nn

from bnrepro.models import MLP, build_model
from tests.conftest import make_config


@pytest.mark.unit
def test_shapes_and_layout_follow_the_paper():
    model = build_model(make_config("experiment=mnist_bn", "model.norm=batch").model)
    assert model(torch.rand(7, 784)).shape == (7, 10)
    assert [b.linear.out_features for b in model.blocks] == [100, 100, 100]
    for block in model.blocks:  # Linear -> BN -> sigmoid: BN sits right before the nonlinearity
        assert [type(m) for m in block] == [nn.Linear, nn.BatchNorm1d, nn.Sigmoid]
    assert list(model.taps()) == ["layer1", "layer2", "layer3"]


@pytest.mark.unit
def test_without_bn_has_no_normalisation():
    model = MLP(norm="none")
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert all(isinstance(b.norm, nn.Identity) for b in model.blocks)


@pytest.mark.unit
def test_taps_are_the_sigmoid_inputs():
    model = MLP(norm="batch").eval()
    seen = {}
    for name, mod in model.taps().items():
        mod.register_forward_pre_hook(lambda m, a, name=name: seen.__setitem__(name, a[0]))
    x = torch.rand(5, 784)
    model(x)
    expected = model.blocks[0].norm(model.blocks[0].linear(x))
    torch.testing.assert_close(seen["layer1"], expected)


@pytest.mark.unit
@pytest.mark.parametrize("std", [0.01, 0.5])
def test_gaussian_init_has_the_configured_std(std):
    torch.manual_seed(0)
    w = MLP(init="gaussian", init_std=std).blocks[0].linear.weight
    assert abs(w.std().item() - std) / std < 0.02
    assert abs(w.mean().item()) < 0.05 * std


@pytest.mark.unit
def test_glorot_init_respects_its_bound():
    torch.manual_seed(0)
    w = MLP(init="glorot").blocks[0].linear.weight
    bound = (6 / (784 + 100)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert all((b.linear.bias == 0).all() for b in MLP(init="glorot").blocks)


@pytest.mark.unit
def test_population_bn_normalises_by_its_running_statistics_and_passes_no_gradient_through_them():
    from bnrepro.models.norms import build_norm

    torch.manual_seed(0)
    bn = build_norm("batch_population", 4, momentum=0.5).double().train()
    x = (torch.randn(32, 4, dtype=torch.float64) * 3 + 2).requires_grad_()
    y = bn(x)
    mean, var = x.detach().mean(0), x.detach().var(0)
    assert torch.allclose(bn.running_mean, 0.5 * mean) and torch.allclose(bn.running_var, 0.5 + 0.5 * var)
    scale = (bn.running_var + bn.eps).rsqrt()
    assert torch.allclose(y, (x - bn.running_mean) * scale * bn.weight + bn.bias)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(g, scale.expand_as(x))  # through x alone: the statistics are constants
    before = bn.running_mean.clone()
    bn.eval()(x)
    assert torch.equal(bn.running_mean, before)  # evaluation normalises the same way and updates nothing
