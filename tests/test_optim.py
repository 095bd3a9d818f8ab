import pytest
import torch

from bnrepro.models import MLP
from bnrepro.optim import FlatSGD
from tests.conftest import sgd_side_by_side

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("kw", [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    {"momentum": 0.5, "dampening": 0.3},
])
def test_flat_sgd_is_bitwise_torch_sgd(kw):
    torch.manual_seed(0)
    a, b = MLP(norm="batch", hidden=(16, 8)), MLP(norm="batch", hidden=(16, 8))
    b.load_state_dict(a.state_dict())
    g = torch.Generator().manual_seed(1)
    batches = [(torch.rand(12, 784, generator=g), torch.randint(0, 10, (12,), generator=g)) for _ in range(15)]
    sgd_side_by_side(a, b, batches, lr=0.1, **kw)


def test_parameters_are_views_of_one_buffer():
    model = MLP(hidden=(4,))
    before = [p.detach().clone() for p in model.parameters()]
    opt = FlatSGD(model.parameters(), lr=1.0)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))  # flattening keeps the values
    opt.flat.add_(1.0)  # a write to the buffer is a write to every parameter
    assert all(torch.equal(p, b + 1.0) for p, b in zip(model.parameters(), before))
    assert sum(p.numel() for p in model.parameters()) == opt.flat.numel()
    model.head.weight.data.fill_(3.0)  # and a write to a parameter lands in the buffer
    assert (opt.flat == 3.0).sum() >= model.head.weight.numel()


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_the_warm_up_rises_linearly_then_holds_the_rate(name):
    """optim.warmup_steps=4: steps 1..4 use lr·t/4, every later step lr; the same on either optimiser, and a
    function of the step alone (a resumed run calls it from its next step)."""
    from bnrepro.optim import OPTIMIZERS, Warmup, current_lr

    opt = OPTIMIZERS[name](MLP(hidden=(4,)).parameters(), lr=0.8)
    warmup = Warmup(opt, 0.8, 4)
    seen = []
    for step in range(1, 8):
        warmup(step)
        seen.append(current_lr(opt))
    assert seen == pytest.approx([0.2, 0.4, 0.6, 0.8, 0.8, 0.8, 0.8])
    warmup(2)  # out of order, as after a resume from step 1
    assert current_lr(opt) == pytest.approx(0.4)


def test_a_warm_up_longer_than_the_run_is_refused_in_one_line():
    from bnrepro import ConfigError
    from tests.conftest import make_config

    make_config("experiment=mnist_bn", "trainer.max_steps=100", "optim.warmup_steps=100")  # the whole run: allowed
    with pytest.raises(ConfigError, match=r"^optim.warmup_steps=101 is longer than the run \(trainer.max_steps=100\)"):
        make_config("experiment=mnist_bn", "trainer.max_steps=100", "optim.warmup_steps=101")
