import numpy as np
import pytest
import torch

from bnrepro.probes.percentiles import _percentiles_numpy, _percentiles_torch, percentiles

pytestmark = pytest.mark.unit

QS = [15, 50, 85]


@pytest.mark.parametrize("n", [1, 2, 7, 256, 25600])
@pytest.mark.parametrize("qs", [QS, [0, 100], [2.5, 33.3, 97.5]])
def test_agrees_with_numpy(n, qs):
    x = torch.randn(n, generator=torch.Generator().manual_seed(n))
    expected = np.percentile(x.numpy().astype(np.float64), qs)
    np.testing.assert_allclose(percentiles(x, qs), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_percentiles_torch(x, qs), expected, rtol=1e-5, atol=1e-6)


def test_pools_every_value_of_a_matrix():
    x = torch.arange(100.0).reshape(10, 10)
    np.testing.assert_allclose(percentiles(x, [50]), [49.5])
    np.testing.assert_allclose(_percentiles_numpy(np.array([3.0, 1.0, 2.0]), [0, 50, 100]), [1, 2, 3])


def test_ties_and_constant_input():
    np.testing.assert_allclose(percentiles(torch.ones(50), QS), [1, 1, 1])


def test_float64_keeps_its_precision_and_bf16_is_accepted():
    x = torch.randn(1001, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 1e-3 + 1.0
    np.testing.assert_allclose(percentiles(x, QS), np.percentile(x.numpy(), QS), rtol=1e-15, atol=0)
    b = x.to(torch.bfloat16)
    np.testing.assert_allclose(percentiles(b, QS), np.percentile(b.float().numpy(), QS), rtol=1e-6)
