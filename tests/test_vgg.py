import math

import pytest
import torch
from torch import nn

from bnrepro.models.noisy_bn import NoisyBatchNorm
from bnrepro.models.vgg import VGG, VGG16


@pytest.mark.unit
def test_sixteen_layer_layout_and_paper_numbering():
    model = VGG(norm="batch", width=0.125)
    taps = model.taps()
    assert len(taps) == 13 and list(taps)[:2] == ["layer1", "layer2"]
    convs = model.convs()
    # Paper layer numbers: #2 is the second 64-channel conv, #13 the last 512-channel one (here width x 1/8).
    assert convs[1].conv.out_channels == 8 and convs[12].conv.out_channels == 64
    assert taps["layer9"] is convs[8].act
    for block in convs:  # conv -> BN -> ReLU: BN after each conv, before its nonlinearity
        assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.unit
def test_norm_variants_and_glorot_init():
    assert all(isinstance(b.norm, nn.Identity) for b in VGG(norm="none", width=0.125).convs())
    noisy = VGG(norm="noisy_batch", width=0.125).convs()
    assert all(isinstance(b.norm, NoisyBatchNorm) for b in noisy)
    assert len({b.norm.seed for b in noisy}) == 13  # each layer its own noise stream
    torch.manual_seed(0)
    w = VGG(width=0.125).convs()[0].conv.weight  # 3 -> 8 channels, 3x3
    bound = (6 / (3 * 9 + 8 * 9)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound
    custom = VGG(layers=(16, "M", 32, "M"), width=1.0)
    assert len(custom.taps()) == 2 and custom.classifier.in_features == 32 * 8 * 8


@pytest.mark.unit
def test_noise_follows_algorithm_1():
    bn = NoisyBatchNorm(64, n_mu=0.5, n_sigma=1.25, r_mu=0.1, r_sigma=0.1)
    mus, sigmas = [], []
    for _ in range(50):
        s, m, sigma, mu = bn.sample_noise(torch.Size((32, 64, 8, 8)), torch.device("cpu"), torch.float32)
        assert mu.abs().max() <= 0.5 and ((sigma >= 1) & (sigma <= 1.25)).all()
        dm = m - mu.view(1, -1, 1, 1)
        assert dm.abs().max() <= 0.1 + 1e-6 and dm.abs().max() > 0.09  # uniform within +-r_mu
        ds = s - sigma.view(1, -1, 1, 1)
        assert abs(ds.std().item() - 0.1) < 0.005 and abs(ds.mean().item()) < 0.005  # N(sigma, r_sigma)
        mus.append(mu)
        sigmas.append(sigma)
    mu, sigma = torch.cat(mus), torch.cat(sigmas)
    assert abs(mu.mean().item()) < 0.03 and abs(mu.var().item() - 0.5 ** 2 / 3) < 0.01  # U(-0.5, 0.5)
    assert abs(sigma.mean().item() - 1.125) < 0.01  # U(1, 1.25)


@pytest.mark.unit
def test_the_per_channel_reading_draws_one_m_and_s_per_sample_and_channel():
    shape = torch.Size((8, 4, 5, 5))
    s, m, sigma, mu = NoisyBatchNorm(4, draw="channel", seed=3).sample_noise(shape, torch.device("cpu"), torch.float32)
    assert s.shape == m.shape == (8, 4, 1, 1)  # broadcast over the positions: the same draw at every (h, w)
    assert m.std(dim=0).min() > 0  # but one per sample
    sp, mp, _, _ = NoisyBatchNorm(4, seed=3).sample_noise(shape, torch.device("cpu"), torch.float32)
    assert sp.shape == shape and mp[:, :, 0, 0].ne(mp[:, :, 1, 1]).all()  # today's reading: one per position too
    torch.manual_seed(0)
    x = torch.randn(8, 4, 5, 5)
    out = NoisyBatchNorm(4, draw="channel", seed=3)(x)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    a = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(out, s * a + m, rtol=1e-4, atol=1e-4)


@pytest.mark.unit
def test_training_output_is_s_times_a_plus_m_before_the_affine():
    torch.manual_seed(0)
    x = torch.randn(16, 4, 5, 5) * 3 + 1
    bn = NoisyBatchNorm(4, seed=7)
    with torch.no_grad():
        bn.weight.fill_(2.0)
        bn.bias.fill_(0.5)
    out = bn(x)
    ref = NoisyBatchNorm(4, seed=7)  # the same stream, drawn again
    s, m, _, _ = ref.sample_noise(x.shape, x.device, x.dtype)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    a = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(out, (s * a + m) * 2.0 + 0.5, rtol=1e-4, atol=1e-4)
    post = NoisyBatchNorm(4, seed=7, position="post_affine")
    with torch.no_grad():
        post.weight.fill_(2.0)
        post.bias.fill_(0.5)
    torch.testing.assert_close(post(x), s * (a * 2.0 + 0.5) + m, rtol=1e-4, atol=1e-4)
    assert bn.num_batches_tracked.item() == 1 and not torch.equal(bn.running_mean, torch.zeros(4))


@pytest.mark.unit
def test_no_noise_in_eval_mode():
    noisy, plain = NoisyBatchNorm(4), nn.BatchNorm2d(4)
    plain.load_state_dict(noisy.state_dict())
    with torch.no_grad():
        noisy.running_mean.fill_(0.2)
        plain.running_mean.fill_(0.2)
    x = torch.randn(3, 4, 2, 2)
    torch.testing.assert_close(noisy.eval()(x), plain.eval()(x))


@pytest.mark.integration
def test_noise_leaves_every_other_rng_stream_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    NoisyBatchNorm(4).train()(torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.unit
def test_default_layout_is_vgg16():
    assert sum(1 for c in VGG16 if c != "M") == 13 and VGG16.count("M") == 5


@pytest.mark.unit
def test_probing_noisy_bn_leaves_the_training_noise_stream_alone():
    """Probes run BN in training mode; noisy BN then draws from its probe stream, not from training's."""
    from bnrepro.probes import ActivationProbe

    def train_two_steps(probe: bool):
        torch.manual_seed(0)
        model = VGG(layers=(8, "M", 8, "M"), norm="noisy_batch", noise={"seed": 3})
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        g = torch.Generator().manual_seed(1)
        x_probe = torch.randn(6, 3, 32, 32, generator=g)
        for _ in range(3):
            x, y = torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            if probe:
                values = ActivationProbe(model, x_probe, qs=[50])()
                assert set(values) == {"act/layer1/pooled/p50", "act/layer1/unit/p50", "act/layer2/pooled/p50",
                                       "act/layer2/unit/p50"} and all(map(math.isfinite, values.values()))
        return model.state_dict()

    with_probe, without = train_two_steps(True), train_two_steps(False)
    assert all(torch.equal(with_probe[k], without[k]) for k in without)
