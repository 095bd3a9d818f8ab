"""CIFAR-10 loading: official files silently, unofficial ones only knowingly, archives once into the cache."""

import tarfile

import pytest
import torch

from bnrepro import DataError
from bnrepro.config.schema import Cifar10
from bnrepro.data import BatchSampler, generator, load_cifar10, load_dataset
from bnrepro.data.cifar10 import official_md5s
from tests.conftest import SHARED, write_synthetic_cifar

CPU = torch.device("cpu")


def cfg(root, cache, **kw):
    """data=cifar10 at its defaults (config.schema.Cifar10), pointed at `root` and `cache`, with no download."""
    return Cifar10(root=str(root), cache_dir=str(cache), **{"download": False, **kw})


@pytest.fixture
def synthetic(tmp_path):
    return write_synthetic_cifar(tmp_path / "root")


@pytest.mark.unit
def test_the_checksums_are_torchvisions():
    from torchvision.datasets import CIFAR10

    md5s = official_md5s()
    assert len(md5s) == 7 and md5s["test_batch"] == dict(CIFAR10.test_list)["test_batch"]


@pytest.mark.unit
def test_unofficial_files_are_refused_by_default(synthetic, tmp_path):
    with pytest.raises(DataError, match="allow_unofficial"):
        load_cifar10(cfg(synthetic, tmp_path / "cache"), CPU)


@pytest.mark.unit
def test_unofficial_files_load_loudly_with_the_flag(synthetic, tmp_path):
    with pytest.warns(UserWarning, match="UNOFFICIAL"):
        ds = load_cifar10(cfg(synthetic, tmp_path / "cache", allow_unofficial=True), CPU)
    assert ds.official is False
    assert ds.train.x.shape == (200, 3, 32, 32) and ds.train.x.dtype == torch.uint8
    assert ds.test.x.shape == (40, 3, 32, 32) and ds.train.y.dtype == torch.int64


@pytest.mark.unit
def test_batches_are_normalised_on_the_device_with_training_statistics(synthetic, tmp_path):
    with pytest.warns(UserWarning):
        ds = load_cifar10(cfg(synthetic, tmp_path / "cache", allow_unofficial=True), CPU)
    x, y = BatchSampler(ds.train, 200, generator(0, "data-order")).next()  # one batch = the whole split
    assert x.dtype == torch.float32 and x.shape == (200, 3, 32, 32)
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)
    assert ds.train.x.dtype == torch.uint8  # the stored split stays uint8


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "cifar-10-batches-py").is_dir(), reason="needs ../shared/datasets")
def test_the_offline_subset_is_flagged_unofficial_and_complete(tmp_path):
    with pytest.raises(DataError, match="allow_unofficial"):
        load_dataset(cfg(SHARED, tmp_path / "cache"), CPU)
    with pytest.warns(UserWarning):
        ds = load_dataset(cfg(SHARED, tmp_path / "cache", allow_unofficial=True), CPU)
    assert (len(ds.train), len(ds.test), ds.official) == (5438, 1017, False)
    assert torch.bincount(ds.train.y).tolist() == [541, 564, 524, 529, 563, 523, 540, 548, 572, 534]
    assert torch.bincount(ds.test.y).tolist() == [105, 93, 100, 104, 92, 87, 114, 102, 110, 110]


@pytest.mark.unit
def test_an_archive_is_extracted_once_into_the_cache(synthetic, tmp_path):
    archive = tmp_path / "cifar.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(synthetic / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    c = cfg(tmp_path / "elsewhere", tmp_path / "cache", allow_unofficial=True, archive=str(archive))
    with pytest.warns(UserWarning):
        first = load_cifar10(c, CPU)
    marker = next((tmp_path / "cache" / "cifar10").glob("*/.complete"))
    stamp = marker.stat().st_mtime_ns
    with pytest.warns(UserWarning):
        second = load_cifar10(c, CPU)
    assert marker.stat().st_mtime_ns == stamp  # not extracted again
    assert torch.equal(first.train.x, second.train.x)
    assert not (tmp_path / "elsewhere").exists()  # nothing written beside the data


@pytest.mark.unit
def test_a_corrupt_batch_is_a_clear_error(synthetic, tmp_path):
    batch = synthetic / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_3|corrupt"), pytest.warns(UserWarning):
        load_cifar10(cfg(synthetic, tmp_path / "cache", allow_unofficial=True), CPU)


@pytest.mark.unit
def test_missing_data_names_the_path_and_the_variable(tmp_path):
    with pytest.raises(DataError) as e:
        load_cifar10(cfg(tmp_path / "nowhere", tmp_path / "cache", download=True), CPU)
    assert str(tmp_path / "nowhere") in str(e.value) and "BNREPRO_DATA" in str(e.value)
    assert not (tmp_path / "nowhere").exists()
    # the archive a user must fetch: its name, size, md5 and source, and how to unpack it where bnrepro looks
    for said in ("cifar-10-python.tar.gz", "170,498,071 bytes", "c58f30108f718f92721af3b95e74349a",
                 "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                 f"tar -xzf cifar-10-python.tar.gz -C {tmp_path / 'nowhere'}", "data.archive="):
        assert said in str(e.value), said
    assert "\n" not in str(e.value)
