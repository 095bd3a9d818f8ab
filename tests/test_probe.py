import numpy as np
import pytest
import torch

from bnrepro.models import MLP
from bnrepro.probes import ActivationProbe
from bnrepro.run import train
from tests.conftest import make_cfg, small_overrides


def _state(run_dir):
    return torch.load(run_dir / "model_final.pt", weights_only=True)


@pytest.mark.integration
def test_probes_leave_training_bitwise_unchanged(tmp_path, mnist_data):
    """Same seed, with and without probes (and with a different probe cadence): identical weights and BN buffers."""
    base = [*small_overrides(mnist_data, steps=150), "model.norm=batch", "trainer.eval_every=50"]
    states = []
    for i, probe_every in enumerate([0, 10, 7]):
        train(make_cfg(*base, f"trainer.probe_every={probe_every}"), tmp_path / str(i))
        states.append(_state(tmp_path / str(i)))
    for other in states[1:]:
        assert other.keys() == states[0].keys()
        for k in states[0]:
            assert torch.equal(states[0][k], other[k]), k
    assert states[0]["blocks.0.norm.num_batches_tracked"].item() == 150


@pytest.mark.integration
def test_probe_reads_batch_statistics_without_updating_them():
    torch.manual_seed(0)
    model = MLP(norm="batch", hidden=(8, 8)).train()
    x = torch.rand(32, 784)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = ActivationProbe(model, x, unit=3, qs=[15, 50, 85], bn_stats="batch")
    values = probe()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and all(m.track_running_stats for m in model.modules() if hasattr(m, "track_running_stats"))
    # With batch statistics, the pooled BN output of layer 1 is standardised: its median is near 0.
    with torch.no_grad():
        z = model.blocks[0].norm(model.blocks[0].linear(x))
    np.testing.assert_allclose(values["act/layer1/pooled/p50"], np.percentile(z.numpy(), 50), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values["act/layer1/unit/p85"], np.percentile(z[:, 3].numpy(), 85), rtol=1e-5, atol=1e-6)
    assert set(values) == {f"act/layer{i}/{v}/p{q}" for i in (1, 2) for v in ("unit", "pooled") for q in (15, 50, 85)}


@pytest.mark.unit
@pytest.mark.parametrize("bn_stats", ["running"])
def test_probe_with_running_statistics_matches_eval_mode(bn_stats):
    torch.manual_seed(0)
    model = MLP(norm="batch", hidden=(8,))
    model.blocks[0].norm.running_mean.fill_(0.3)
    x = torch.rand(16, 784)
    values = ActivationProbe(model, x, unit=0, qs=[50], bn_stats=bn_stats)()
    model.eval()
    with torch.no_grad():
        z = model.blocks[0].norm(model.blocks[0].linear(x))
    np.testing.assert_allclose(values["act/layer1/unit/p50"], np.percentile(z[:, 0].numpy(), 50), rtol=1e-5)
    assert model.blocks[0].norm.running_mean[0].item() == pytest.approx(0.3)


@pytest.mark.integration
def test_consecutive_step_changes_of_the_moments():
    """In float64, where the shift the test makes is exact to ~1e-16: the moments are computed in float64 anyway, and
    float32 activations would round each shifted value by ~3e-8, which no 1e-9 tolerance survives on every CPU."""
    torch.manual_seed(0)
    model = MLP(norm="none", hidden=(8, 8)).double().train()
    probe = ActivationProbe(model, torch.rand(32, 784, dtype=torch.float64), qs=[50], moments=True)
    first = probe()
    with torch.no_grad():
        model.blocks[1].linear.bias.add_(0.5)  # the "update": shifts layer 2's inputs by exactly 0.5
    d = probe.deltas()
    assert d["act/layer1/pooled/dmean"] == pytest.approx(0.0, abs=1e-12)
    assert d["act/layer2/pooled/dmean"] == pytest.approx(0.5, rel=1e-9)
    assert d["act/layer2/pooled/dvar"] == pytest.approx(0.0, abs=1e-9)
    assert d["act/layer2/unit/dmean"] == pytest.approx(0.5, rel=1e-9)
    assert first["act/layer2/pooled/std"] ** 2 == pytest.approx(probe.last_moments[("layer2", "pooled")][1])


@pytest.mark.integration
def test_unit_moment_changes_see_what_pooling_averages_out():
    """A shift of +1 on unit 0 and -1 on unit 1 leaves the pooled mean in place; the unit view sees it (in float64,
    as above)."""
    torch.manual_seed(0)
    model = MLP(norm="none", hidden=(8, 8)).double().train()
    probe = ActivationProbe(model, torch.rand(32, 784, dtype=torch.float64), unit=0, qs=[50], moments=True)
    probe()
    with torch.no_grad():
        model.blocks[1].linear.bias[0] += 1.0
        model.blocks[1].linear.bias[1] -= 1.0
    d = probe.deltas()
    assert d["act/layer2/pooled/dmean"] == pytest.approx(0.0, abs=1e-9)
    assert d["act/layer2/unit/dmean"] == pytest.approx(1.0, rel=1e-9)


@pytest.mark.unit
def test_noisy_bn_moments_under_the_same_noise_see_the_network_not_the_noise():
    """Two probes of a network whose weights did not change: under fresh noise noisy BN's moments move by about
    |mu - mu'| (mu ~ U(-0.5, 0.5) per channel, so by far more than 0.01 over 8 units), under the same noise they do not
    move at all. Without noisy BN both readings are the same numbers."""
    torch.manual_seed(0)
    x = torch.rand(64, 784, dtype=torch.float64)
    noisy = MLP(norm="noisy_batch", hidden=(8, 8)).double().train()
    probe = ActivationProbe(noisy, x, qs=[50], moments=True)
    probe()
    d = probe.deltas()
    assert max(d[f"act/layer{i}/unit/dmean"] for i in (1, 2)) > 0.01
    for i in (1, 2):
        for view in ("unit", "pooled"):
            assert d[f"act/layer{i}/{view}/dmean_same_noise"] == pytest.approx(0.0, abs=1e-12)
            assert d[f"act/layer{i}/{view}/dvar_same_noise"] == pytest.approx(0.0, abs=1e-12)
    plain = MLP(norm="batch", hidden=(8, 8)).double().train()
    values = ActivationProbe(plain, x, qs=[50], moments=True)()
    assert values["act/layer2/unit/mean_same_noise"] == values["act/layer2/unit/mean"]
    assert values["act/layer2/pooled/std_same_noise"] == values["act/layer2/pooled/std"]


class _Stack(torch.nn.Module):
    """Linear layers, each followed by a ReLU the probes tap: the smallest network InitProbe reads."""

    def __init__(self, weights):
        super().__init__()
        self.linears = torch.nn.ModuleList()
        for w in weights:
            lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False).double()
            with torch.no_grad():
                lin.weight.copy_(w)
            self.linears.append(lin)
        self.acts = torch.nn.ModuleList(torch.nn.ReLU() for _ in weights)

    def forward(self, x):
        for lin, act in zip(self.linears, self.acts):
            x = act(lin(x))
        return x

    def taps(self):
        return {f"layer{i}": act for i, act in enumerate(self.acts, start=1)}

    def layers(self):
        return list(self.linears)


@pytest.mark.unit
def test_the_init_probe_reads_rank_and_gradient_on_networks_whose_answer_is_known():
    """An identity network keeps its input's rank at every layer; a rank-1 weight collapses every layer after it to
    rank 1. The gradient norms are autograd's, and no .grad is written."""
    from bnrepro.probes import InitProbe, effective_rank

    assert effective_rank(torch.eye(6)) == pytest.approx(6.0)
    assert effective_rank(torch.outer(torch.arange(1.0, 5.0), torch.ones(3))) == pytest.approx(1.0)
    torch.manual_seed(0)
    x = torch.rand(16, 6, dtype=torch.float64)  # non-negative: the ReLUs pass it unchanged
    loss = lambda out, _y: out.pow(2).sum()  # noqa: E731
    identity = _Stack([torch.eye(6, dtype=torch.float64)] * 3)
    got = InitProbe(identity, loss, x, None)()
    for i in (1, 2, 3):
        assert got[f"init/layer{i}/rank"] == pytest.approx(effective_rank(x), rel=1e-12)
    rank_one = torch.outer(torch.ones(6), torch.rand(6)).double()
    collapsed = _Stack([rank_one, torch.eye(6, dtype=torch.float64), torch.eye(6, dtype=torch.float64)])
    got = InitProbe(collapsed, loss, x, None)()
    assert [round(got[f"init/layer{i}/rank"], 9) for i in (1, 2, 3)] == [1.0, 1.0, 1.0]
    out = loss(collapsed(x), None)
    grads = torch.autograd.grad(out, [lin.weight for lin in collapsed.linears])
    assert [got[f"init/layer{i}/grad_norm"] for i in (1, 2, 3)] == pytest.approx([float(g.norm()) for g in grads])
    assert all(lin.weight.grad is None for lin in collapsed.linears)


@pytest.mark.unit
def test_the_weight_probe_sees_scale_invariance_and_the_norm_growth_of_plain_sgd():
    """A weight BN follows: w·∇w = 0 to float rounding (float64, BN's eps at 1e-12 so that the invariance is exact
    up to rounding), and one plain SGD step makes ‖w‖² grow by η²‖g‖². Without BN the gradient is not orthogonal.
    eff_lr is η over the mean squared row norm; nothing is written to .grad."""
    from bnrepro.optim import FlatSGD
    from bnrepro.probes.weights import WeightProbe

    torch.manual_seed(0)
    x, y = torch.rand(64, 784, dtype=torch.float64), torch.randint(0, 10, (64,))
    loss = torch.nn.functional.cross_entropy
    bn = MLP(norm="batch", hidden=(32, 16), bn_eps=1e-12).double()
    lr = 0.7
    got = WeightProbe(bn, loss, x, y, lambda: lr)()
    for i in (1, 2):
        assert abs(got[f"weights/layer{i}/cos"]) < 1e-10  # float64 rounding over 784 and 32 inputs
        w = bn.blocks[i - 1].linear.weight.detach()
        assert got[f"weights/layer{i}/norm"] == pytest.approx(float(w.norm()), rel=1e-12)
        assert got[f"weights/layer{i}/eff_lr"] == pytest.approx(lr / float(w.pow(2).sum(1).mean()), rel=1e-12)
    assert abs(got["weights/layer3/cos"]) > 1e-3  # the output layer: no BN after it
    assert all(p.grad is None for p in bn.parameters())

    opt = FlatSGD(bn.parameters(), lr=lr)
    w = bn.blocks[0].linear.weight
    before = float(w.detach().pow(2).sum())
    opt.zero_grad()
    loss(bn(x), y).backward()
    g2 = float(w.grad.pow(2).sum())
    opt.step()
    assert float(w.detach().pow(2).sum()) - before == pytest.approx(lr ** 2 * g2, rel=1e-9)
    assert g2 > 0

    plain = MLP(norm="none", hidden=(32, 16)).double()
    assert all(abs(v) > 1e-4 for k, v in WeightProbe(plain, loss, x, y, lambda: lr)().items() if k.endswith("/cos"))
