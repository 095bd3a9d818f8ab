"""What the GPU paths depend on, checked on the CPU: memory layout kept by the optimiser, float32 probes and noise,
the percentiles computed on the device, the device choice, and the config rules around them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bnrepro import ConfigError
from bnrepro.config.plan import resolve, resolve_device
from bnrepro.models.noisy_bn import NoisyBatchNorm
from bnrepro.probes.percentiles import _percentiles_numpy, _percentiles_torch
from tests.conftest import make_cfg, sgd_side_by_side


def conv_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 10))


@pytest.mark.unit
def test_flat_sgd_keeps_channels_last_and_torch_sgd_numbers():
    torch.manual_seed(0)
    a = conv_net().to(memory_format=torch.channels_last)
    b = conv_net().to(memory_format=torch.channels_last)
    b.load_state_dict(a.state_dict())
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(6, 3, 9, 9, generator=g).to(memory_format=torch.channels_last),
                torch.randint(0, 10, (6,), generator=g)) for _ in range(5)]
    sgd_side_by_side(a, b, batches, lr=0.1, momentum=0.9)
    for name, pb in b.named_parameters():
        if pb.dim() == 4:
            assert pb.is_contiguous(memory_format=torch.channels_last), name
            assert pb.grad.stride() == pb.stride(), name


@pytest.mark.unit
@pytest.mark.parametrize("n", [1, 2, 5, 1000, 25_601])
def test_device_percentiles_are_numpys(n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(n))
    qs = [0, 1, 15, 50, 85, 99, 100]
    np.testing.assert_allclose(_percentiles_torch(x, qs), _percentiles_numpy(x.numpy(), qs), rtol=0, atol=1e-6)


@pytest.mark.integration
def test_noisy_bn_draws_its_noise_in_float32_under_autocast():
    bn = NoisyBatchNorm(4)
    bn.train()
    drawn = []
    original = bn.sample_noise
    bn.sample_noise = lambda shape, device, dtype: drawn.append(dtype) or original(shape, device, dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bn(torch.randn(8, 4, 3, 3).bfloat16())
    assert drawn == [torch.float32]


@pytest.mark.unit
def test_auto_device_sends_only_the_conv_model_to_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "vgg").type == "cuda"
    assert resolve_device("auto", "mlp").type == "cpu" and resolve_device("auto", "dln").type == "cpu"
    assert resolve_device("cpu", "vgg").type == "cpu"


@pytest.mark.unit
@pytest.mark.parametrize("probe", ["trainer.ics_every=5", "trainer.landscape_every=5"])
def test_amp_with_step_probes_is_refused(probe):
    with pytest.raises(ConfigError, match="trainer.amp=bf16 cannot be used"):
        resolve(make_cfg("experiment=cifar_bn_small", "trainer.amp=bf16", probe))
    resolve(make_cfg("experiment=cifar_bn_small", "trainer.amp=bf16"))  # without them it is allowed


@pytest.mark.unit
def test_tf32_must_be_a_flag():
    with pytest.raises(ConfigError, match="trainer.tf32"):
        resolve(make_cfg("experiment=cifar_bn_small", "trainer.tf32=maybe"))
