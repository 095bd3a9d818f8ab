"""The exact fast paths: each must give the very numbers of the plain PyTorch it replaces."""

import copy
import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bnrepro import ConfigError
from bnrepro.data import to_csr
from bnrepro.evaluation import cross_entropy_sum_or_mean
from bnrepro.models import MLP, VGG, DeepLinear, fused_loss_and_grad, supports_fused
from bnrepro.optim import FlatSGD
from bnrepro.run import train
from tests.conftest import make_cfg, make_config, small_overrides


def _autograd_step(model, opt, x, y):
    out = model(x)
    loss = F.cross_entropy(out, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def _fused_step(model, opt, x, y):
    opt.zero_grad()
    loss, _ = fused_loss_and_grad(model, x, y)
    opt.step()
    return loss


@pytest.mark.unit
@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_fused_step_is_bitwise_autograd(norm, activation):
    torch.manual_seed(0)
    a = MLP(in_features=40, hidden=(16, 12), norm=norm, activation=activation, init="glorot")
    b = copy.deepcopy(a)
    opt_a, opt_b = FlatSGD(a.parameters(), lr=0.5, momentum=0.9), FlatSGD(b.parameters(), lr=0.5, momentum=0.9)
    x, y = torch.rand(200, 40), torch.randint(0, 10, (200,))
    for i in range(40):
        batch = slice(i % 10 * 20, i % 10 * 20 + 20)
        assert torch.equal(_autograd_step(a, opt_a, x[batch], y[batch]), _fused_step(b, opt_b, x[batch], y[batch]))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:  # weights, BN running statistics and step counts
        assert torch.equal(sa[k], sb[k]), k
    assert torch.equal(opt_a.grad, opt_b.grad)


@pytest.mark.unit
def test_fused_step_follows_bn_cumulative_average():
    """BatchNorm1d with momentum=None averages running stats cumulatively: the fused step must too."""
    torch.manual_seed(1)
    a = MLP(in_features=20, hidden=(8,), norm="batch")
    for m in a.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = None
    b = copy.deepcopy(a)
    opt_a, opt_b = FlatSGD(a.parameters(), lr=0.1), FlatSGD(b.parameters(), lr=0.1)
    for _ in range(5):
        x, y = torch.randn(30, 20), torch.randint(0, 10, (30,))
        _autograd_step(a, opt_a, x, y)
        _fused_step(b, opt_b, x, y)
    assert torch.equal(a.blocks[0].norm.running_var, b.blocks[0].norm.running_var)


@pytest.mark.unit
def test_fused_step_applies_only_where_it_is_exact():
    assert supports_fused(MLP(norm="batch")) and supports_fused(MLP(norm="none"))
    for model in (MLP(norm="noisy_batch"), MLP(norm="l2"), VGG(width=0.125), DeepLinear()):
        assert not supports_fused(model)
    no_stats = MLP(norm="batch")
    no_stats.blocks[0].norm.track_running_stats = False
    assert not supports_fused(no_stats)


@pytest.mark.unit
def test_the_fused_step_runs_only_where_the_bitwise_test_covers_it():
    """config.fused_applies (the kernel's own supports_fused, asked of the model a config builds) picks exactly the
    norms and activations that test_fused_step_is_bitwise_autograd checks, and never under autocast or off the
    MLP."""
    from itertools import product

    from bnrepro.config.check import fused_applies
    from bnrepro.models import ACTIVATIONS, NORMS

    applies = {(n, a) for n, a in product(NORMS, ACTIVATIONS)
               if fused_applies(make_config("experiment=mnist_bn", f"model.norm={n}", f"model.activation={a}"))}
    assert applies == set(product(["none", "batch"], ["sigmoid", "tanh", "relu"]))
    for overrides in (["trainer.amp=bf16"], ["model.affine=false"], ["model.norm_position=post"]):
        assert not fused_applies(make_config("experiment=mnist_bn", *overrides))
    for experiment in ("dln", "cifar_bn_small"):
        assert not fused_applies(make_config(f"experiment={experiment}"))


@pytest.mark.integration
def test_training_with_and_without_the_fused_step_is_identical(tmp_path, mnist_data):
    """The whole loop: same weights, same metrics file, and run.json says which path ran."""
    base = [*small_overrides(mnist_data, steps=120), "model.norm=batch"]
    for mode in ("auto", "false"):
        train(make_cfg(*base, f"trainer.fused_step={mode}"), tmp_path / mode)
    assert json.loads((tmp_path / "auto" / "run.json").read_text())["fused_step"] is True
    assert json.loads((tmp_path / "false" / "run.json").read_text())["fused_step"] is False
    fused, plain = (torch.load(tmp_path / m / "model_final.pt", weights_only=True) for m in ("auto", "false"))
    assert all(torch.equal(fused[k], plain[k]) for k in plain)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "auto" / "metrics.parquet"),
                                  pd.read_parquet(tmp_path / "false" / "metrics.parquet"))


@pytest.mark.unit
def test_fused_step_true_refuses_models_it_cannot_take():
    with pytest.raises(ConfigError, match="trainer.fused_step"):

        make_config("experiment=mnist_bn", "model.norm=l2", "trainer.fused_step=true")


@pytest.mark.unit
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_evaluation_cross_entropy_matches_torch(scale):
    torch.manual_seed(0)
    out, y = torch.randn(5000, 10) * scale, torch.randint(0, 10, (5000,))
    assert torch.equal(cross_entropy_sum_or_mean(out, y), F.cross_entropy(out, y))
    assert torch.equal(cross_entropy_sum_or_mean(out, y, "sum"), F.cross_entropy(out, y, reduction="sum"))
    half = out.bfloat16()  # other dtypes take F.cross_entropy itself
    assert torch.equal(cross_entropy_sum_or_mean(half, y), F.cross_entropy(half, y))


@pytest.mark.unit
def test_csr_copy_has_int32_indices_and_the_same_products():
    torch.manual_seed(0)
    x = torch.rand(300, 50) * (torch.rand(300, 50) < 0.2)
    w = torch.randn(20, 50)
    csr = to_csr(x)
    assert csr.layout == torch.sparse_csr and csr.crow_indices().dtype == torch.int32
    assert torch.equal(csr.to_dense(), x)
    assert torch.equal(csr @ w.t(), x.to_sparse_csr() @ w.t())


@pytest.mark.unit
def test_step_log_holds_each_steps_loss_and_correct_count():
    from bnrepro.record import StepLog

    torch.manual_seed(0)
    log = StepLog(25, torch.device("cpu"), classification=True)
    outs, ys, losses = torch.randn(25, 8, 10), torch.randint(0, 10, (25, 8)), torch.rand(25)
    for i in range(25):
        log.append(losses[i], outs[i], ys[i])
        if i % 10 == 6 or i == 24:  # uneven windows
            log.reduce()
    assert torch.equal(log.losses, losses)
    assert torch.equal(log.correct, (outs.argmax(2) == ys).sum(1))
    regression = StepLog(3, torch.device("cpu"), classification=False)
    for i in range(3):
        regression.append(losses[i], outs[i], None)
    regression.reduce()
    assert torch.equal(regression.losses, losses[:3]) and not regression.correct.any()
