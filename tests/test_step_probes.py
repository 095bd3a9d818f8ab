"""The probes inside a training step: ICS (Santurkar Def 2.1) and the loss landscape (App. A.2.2), checked against
finite differences and a brute-force loop on tiny networks, and shown to leave training bitwise unchanged."""

import copy

import pytest
import torch

from bnrepro.evaluation import sum_squared_error
from bnrepro.models import MLP, DeepLinear, layer_weight
from bnrepro.optim import FlatSGD
from bnrepro.probes import ICSProbe, LandscapeProbe, NoiseReplay, eta_grid, frozen_norm_stats
from bnrepro.probes.ics import layer_numbers
from bnrepro.probes.landscape import eta_key
from bnrepro.run import train
from tests.conftest import make_cfg

F = torch.nn.functional


def tiny(norm: str = "batch") -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = MLP(in_features=6, hidden=(5, 5, 4), num_classes=3, norm=norm, activation="tanh", init="glorot").double()
    x = torch.randn(16, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (16,))
    return model, x, y


def loss_with(model: torch.nn.Module, state: dict, x, y) -> torch.Tensor:
    m = copy.deepcopy(model)
    m.load_state_dict(state, strict=False)
    with frozen_norm_stats(m, "batch"):
        return F.cross_entropy(m(x), y)


@torch.no_grad()
def fd_grad(model, state: dict, name: str, x, y, h: float = 1e-6) -> torch.Tensor:
    """Central finite differences of the loss with respect to one parameter, the others fixed at `state`."""
    g = torch.zeros_like(state[name]).detach()
    for idx in range(state[name].numel()):
        plus, minus = dict(state), dict(state)
        plus[name] = (state[name].clone().view(-1)
                      .index_add(0, torch.tensor([idx]), torch.tensor([h], dtype=g.dtype)).view_as(g))
        minus[name] = (state[name].clone().view(-1)
                      .index_add(0, torch.tensor([idx]), torch.tensor([-h], dtype=g.dtype)).view_as(g))
        g.view(-1)[idx] = (loss_with(model, plus, x, y) - loss_with(model, minus, x, y)) / (2 * h)
    return g


@pytest.mark.unit
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_ics_gradient_uses_the_updated_earlier_layers(norm):
    model, x, y = tiny(norm)
    opt = FlatSGD(model.parameters(), lr=0.5)
    probe = ICSProbe(model, F.cross_entropy, layers=[2, 4])
    old = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    probe.before_step()
    opt.step()
    out = probe.after_step(x, y)
    new = {n: p.detach().clone() for n, p in model.named_parameters()}
    owner = layer_numbers(model)
    names = {id(p): n for n, p in model.named_parameters()}
    for i in (2, 4):
        w = names[id(layer_weight(model.layers()[i - 1]))]
        mixed = {n: new[n] if owner[n] < i else old[n] for n in old}
        g_new = fd_grad(model, mixed, w, x, y)  # G' by finite differences: earlier layers updated, the rest not
        g = fd_grad(model, old, w, x, y)  # G: before the update
        assert out[f"ics/layer{i}/l2"] == pytest.approx(float((g - g_new).norm()), rel=1e-5, abs=1e-9)
        assert out[f"ics/layer{i}/cos"] == pytest.approx(float(F.cosine_similarity(g.view(-1), g_new.view(-1), 0)),
                                                          rel=1e-6)
        assert out[f"ics/layer{i}/gnorm"] == pytest.approx(float(g.norm()), rel=1e-6)
        assert out[f"ics/layer{i}/l2"] > 1e-4  # a real shift: the earlier layers did move
        # and not the gradient with *every* layer updated, nor with none
        assert float((fd_grad(model, new, w, x, y) - g_new).norm()) > 1e-6


@pytest.mark.unit
@pytest.mark.parametrize("norm", ["batch", "noisy_batch", "linf"])
def test_ics_is_zero_when_nothing_moves(norm):
    """With no update G' = G exactly, also for noisy BN: the probe replays the noise the step drew."""
    model, x, y = tiny(norm)
    opt = FlatSGD(model.parameters(), lr=0.0)
    replay = NoiseReplay(model)
    probe = ICSProbe(model, F.cross_entropy, layers=[2, 3], replay=replay)
    replay.snapshot()
    F.cross_entropy(model(x), y).backward()
    probe.before_step()
    opt.step()
    out = probe.after_step(x, y)
    assert out["ics/layer2/l2"] < 1e-12 and out["ics/layer3/cos"] == pytest.approx(1.0)


def brute_force_landscape(model, x, y, etas):
    """One deep copy per step size, weights moved in place, gradients by backward(): the loop the probe replaces."""
    g = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    gnorm = torch.sqrt(sum(v.pow(2).sum() for v in g.values()))
    losses, diffs = [], []
    for eta in etas:
        m = copy.deepcopy(model)
        with torch.no_grad():
            for n, p in m.named_parameters():
                p -= eta * g[n]
        m.zero_grad()
        with frozen_norm_stats(m, "batch"):
            loss = F.cross_entropy(m(x), y)
        loss.backward()
        losses.append(float(loss.detach()))
        diffs.append(float(torch.sqrt(sum((g[n] - p.grad).pow(2).sum() for n, p in m.named_parameters()))))
    return {
        "landscape/loss_min": min(losses), "landscape/loss_max": max(losses),
        "landscape/gpred_min": min(diffs), "landscape/gpred_max": max(diffs),
        "landscape/beta": max(d / (e * float(gnorm)) for d, e in zip(diffs, etas)),
        "landscape/beta_min": min(d / (e * float(gnorm)) for d, e in zip(diffs, etas)),
        "landscape/gnorm": float(gnorm),
        **{eta_key(e, "loss"): v for e, v in zip(etas, losses)},
        **{eta_key(e, "gpred"): d for e, d in zip(etas, diffs)},
    }


@pytest.mark.unit
@pytest.mark.parametrize("norm", ["none", "batch", "l2"])
@pytest.mark.parametrize("batched", [True, False])
def test_landscape_matches_a_brute_force_loop(norm, batched):
    model, x, y = tiny(norm)
    F.cross_entropy(model(x), y).backward()
    etas = eta_grid(0.3, 0.5, 4.0, 6)
    before = copy.deepcopy(model.state_dict())
    got = LandscapeProbe(model, F.cross_entropy, etas, batched=batched)(x, y)
    want = brute_force_landscape(model, x, y, etas)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-9), k
    for k, v in model.state_dict().items():  # weights and running statistics exactly as they were
        assert torch.equal(v, before[k]), k


@pytest.mark.unit
def test_landscape_with_noisy_bn_replays_the_step_noise():
    """Noisy BN: every eta sees the noise the training step drew, batched or not; eta -> 0 gives the step's loss."""
    torch.manual_seed(0)
    model = MLP(in_features=6, hidden=(5, 5), num_classes=3, norm="noisy_batch", activation="tanh",
                init="glorot").double()
    x, y = torch.randn(16, 6, dtype=torch.float64), torch.randint(0, 3, (16,))
    replay = NoiseReplay(model)
    replay.snapshot()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    train_state = [m.snapshot() for m in replay.modules]
    tiny_eta = LandscapeProbe(model, F.cross_entropy, [1e-12], replay=replay)(x, y)
    assert tiny_eta["landscape/loss_min"] == pytest.approx(float(loss.detach()), rel=1e-9)
    etas = eta_grid(0.1, 0.5, 4, 5)
    a = LandscapeProbe(model, F.cross_entropy, etas, batched=True, replay=replay)(x, y)
    b = LandscapeProbe(model, F.cross_entropy, etas, batched=False, replay=replay)(x, y)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-9), k
    for m, s in zip(replay.modules, train_state):  # the training stream did not move
        assert torch.equal(m.snapshot(), s) and m.stream == "train"


@pytest.mark.unit
def test_eta_grid():
    assert eta_grid(0.1, 0.5, 4.0, 8) == pytest.approx([0.05 + i * 0.05 for i in range(8)])
    log = eta_grid(1e-6, 0.01, 30, 8, "log")
    assert log[0] == pytest.approx(1e-8) and log[-1] == pytest.approx(3e-5)


def dln_cfg(*extra):
    return make_cfg("experiment=dln", "trainer.max_steps=60", "trainer.eval_every=30", "logger=none",
                    "model.depth=6", *extra)


@pytest.mark.integration
@pytest.mark.parametrize("norm", ["batch", "noisy_batch", "l1"])
def test_step_probes_leave_training_bitwise_unchanged(tmp_path, norm):
    states = []
    for i, every in enumerate([0, 1, 7]):
        train(dln_cfg(f"model.norm={norm}", f"trainer.ics_every={every}", f"trainer.landscape_every={every}",
                      "ics.layers=[3,5]"), tmp_path / str(i))
        states.append(torch.load(tmp_path / str(i) / "model_final.pt", weights_only=True))
    for other in states[1:]:
        for k in states[0]:
            assert torch.equal(states[0][k], other[k]), k


@pytest.mark.integration
def test_dln_loss_falls_at_the_papers_rate(tmp_path):
    import pandas as pd

    info = train(make_cfg("experiment=dln", "model.norm=none", "trainer.max_steps=300", "trainer.ics_every=100",
                          "trainer.landscape_every=100", "logger=none"), tmp_path)
    assert info["status"] == "completed"
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    train_loss = m[(m["split"] == "train") & (m["metric"] == "loss")].sort_values("step")["value"].to_numpy()
    assert train_loss[-1] < 0.7 * train_loss[0]
    probe = m[m["split"] == "probe"]
    assert sorted(probe["step"].unique()) == [100, 200, 300]
    metrics = set(probe["metric"].astype(str))
    assert {"ics/layer9/l2", "ics/layer17/cos", "landscape/beta", "landscape/gpred_max"} <= metrics
    assert probe["value"].notna().all()


@pytest.mark.unit
def test_sum_squared_error_scale():
    out, y = torch.zeros(1000, 10), torch.ones(1000, 10)
    assert float(sum_squared_error(out, y)) == 10_000.0


@pytest.mark.unit
def test_dln_layout():
    m = DeepLinear(depth=25, width=10, norm="batch")
    assert len(m.layers()) == 25 and sum(isinstance(b.norm, torch.nn.BatchNorm1d) for b in m.blocks) == 24
    assert all(b.linear.bias is None for b in m.blocks)
    assert m(torch.randn(7, 10)).shape == (7, 10)


@pytest.mark.integration
def test_step_probes_leave_vgg_training_bitwise_unchanged(tmp_path, cifar_data):
    """The convolutional path too, with noisy BN (whose noise the probes replay) and the batched landscape."""
    states = []
    for i, every in enumerate([0, 2]):
        cfg = make_cfg("experiment=ics", "model.norm=noisy_batch", "model.width=0.0625", "trainer.max_steps=6",
                       "trainer.eval_every=3", "trainer.batch_size=16", "logger=none", f"trainer.ics_every={every}",
                       f"trainer.landscape_every={every}", "landscape.batched=true", "landscape.points=3",
                       *cifar_data["overrides"])
        train(cfg, tmp_path / str(i))
        states.append(torch.load(tmp_path / str(i) / "model_final.pt", weights_only=True))
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


@pytest.mark.unit
@pytest.mark.parametrize("batched", [True, False])
def test_relative_gradient_change_is_scale_free_on_a_quadratic_loss(batched):
    """L(W) = ½‖Wx‖² has g ∝ W and Δg = η g xxᵀ, so the report's relative reading ‖Δg‖/‖g‖ (gpred / gnorm) is the
    same at every scale of the weights while the raw ‖Δg‖ grows with it: a network that barely moves cannot look
    smooth by that reading."""
    torch.manual_seed(0)
    x = torch.randn(8, 4, dtype=torch.float64)
    etas = eta_grid(0.01, 0.5, 4.0, 4)
    readings = {}
    for scale in (1.0, 10.0):
        torch.manual_seed(1)  # the same weights, scaled
        model = torch.nn.Linear(4, 3, bias=False).double()
        with torch.no_grad():
            model.weight.mul_(scale)
        quadratic = lambda out, _y: 0.5 * out.pow(2).sum()  # noqa: E731
        quadratic(model(x), None).backward()
        readings[scale] = LandscapeProbe(model, quadratic, etas, batched=batched)(x, None)
    for e in etas:
        raw = [readings[s][eta_key(e, "gpred")] for s in (1.0, 10.0)]
        rel = [readings[s][eta_key(e, "gpred")] / readings[s]["landscape/gnorm"] for s in (1.0, 10.0)]
        assert raw[1] == pytest.approx(10 * raw[0], rel=1e-9)
        assert rel[1] == pytest.approx(rel[0], rel=1e-9)
        assert rel[0] > 0
