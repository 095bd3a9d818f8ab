import dataclasses
import os
import stat

import pytest
import torch

from bnrepro import DataError
from bnrepro.data import BatchSampler, Split, generator, load_dataset, load_idx, locate_idx, stream_seed
from tests.conftest import SHARED, make_cfg, make_config, write_synthetic_mnist

MNIST_CONFIG = make_config().data  # configs/data/mnist.yaml, composed and checked


def data_cfg(root, cache, **kw):
    """configs/data/mnist.yaml, pointed at `root` and `cache`."""
    return dataclasses.replace(MNIST_CONFIG, root=str(root), cache_dir=str(cache), **{"download": False, **kw})


def load_mnist(cfg, device):
    return load_idx(cfg, device)


def locate_mnist(cfg):
    folder, _, _ = locate_idx(cfg)
    return folder, None


@pytest.mark.unit
def test_checksums_are_torchvisions():
    from torchvision.datasets import MNIST

    assert dict(MNIST.resources) == dict(MNIST_CONFIG.gz_md5)


@pytest.mark.unit
def test_missing_data_names_the_path_and_the_variable(tmp_path):
    with pytest.raises(DataError) as e:
        locate_mnist(data_cfg(tmp_path / "nowhere", tmp_path / "cache", download=True))
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in msg and "BNREPRO_DATA" in msg
    assert not (tmp_path / "nowhere").exists()  # nothing created on the way to the error


@pytest.mark.unit
def test_files_in_another_layout_are_found_and_the_key_that_reads_them_named(tmp_path):
    """A flat folder (the Debian package's layout): the message names data.folder=. rather than the data root."""
    root = write_synthetic_mnist(tmp_path / "root", n_train=60, n_test=20)
    for gz in (root / "MNIST" / "raw").iterdir():
        gz.rename(root / gz.name)
    with pytest.raises(DataError) as e:
        locate_mnist(data_cfg(root, tmp_path / "cache"))
    assert f"They are in {root.resolve()}: data.folder=. reads them there" in str(e.value)
    (root / "flat").mkdir()
    for gz in root.glob("*.gz"):
        gz.rename(root / "flat" / gz.name)
    with pytest.raises(DataError, match="data.folder=flat reads them there"):
        locate_mnist(data_cfg(root, tmp_path / "cache"))


@pytest.mark.unit
def test_corrupt_gz_fails_on_the_checksum(tmp_path):
    root = write_synthetic_mnist(tmp_path / "root", n_train=60, n_test=20)
    with pytest.raises(DataError, match="md5"):
        load_mnist(data_cfg(root, tmp_path / "cache"), torch.device("cpu"))


@pytest.mark.unit
def test_unofficial_files_load_only_when_allowed_and_are_marked(tmp_path):
    root = write_synthetic_mnist(tmp_path / "root", n_train=60, n_test=20)
    with pytest.warns(UserWarning, match="UNOFFICIAL"):
        ds = load_mnist(data_cfg(root, tmp_path / "cache", allow_unofficial=True), torch.device("cpu"))
    assert ds.official is False
    assert ds.train.x.shape == (60, 784) and ds.test.y.shape == (20,)
    assert ds.train.x.dtype == torch.float32 and 0 <= ds.train.x.min() and ds.train.x.max() <= 1


@pytest.mark.unit
def test_two_sources_of_one_dataset_never_share_a_cache_folder(tmp_path):
    """Unofficial files beside the official ones (data.allow_unofficial=true) are unpacked into a folder of their own:
    the other source's unpacked files are left as they were."""
    import gzip
    import warnings

    first = write_synthetic_mnist(tmp_path / "first", n_train=60, n_test=20)
    second = write_synthetic_mnist(tmp_path / "second", n_train=60, n_test=20)
    gz = second / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    labels = bytearray(gzip.decompress(gz.read_bytes()))
    labels[-1] = (labels[-1] + 1) % 10  # one label changed: another source
    gz.write_bytes(gzip.compress(bytes(labels)))
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, _, _ = locate_idx(data_cfg(first, cache, allow_unofficial=True))
        before = {p.name: p.read_bytes() for p in a.iterdir()}
        b, _, _ = locate_idx(data_cfg(second, cache, allow_unofficial=True))
    assert a != b and a.parents[2] == b.parents[2] and a.relative_to(a.parents[2]).parts[1:] == ("MNIST", "raw")
    assert {p.name: p.read_bytes() for p in a.iterdir()} == before


@pytest.mark.unit
def test_truncated_gz_is_a_clear_error(tmp_path):
    root = write_synthetic_mnist(tmp_path / "root", n_train=60, n_test=20)
    gz = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:100])
    with pytest.raises(DataError, match="train-images"), pytest.warns(UserWarning):
        load_mnist(data_cfg(root, tmp_path / "cache", allow_unofficial=True), torch.device("cpu"))


@pytest.mark.unit
def test_read_only_root_is_never_written(tmp_path):
    root = write_synthetic_mnist(tmp_path / "root", n_train=60, n_test=20)
    raw = root / "MNIST" / "raw"
    before = sorted(os.listdir(raw))
    raw.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.warns(UserWarning):
            found, _ = locate_mnist(data_cfg(root, tmp_path / "cache", allow_unofficial=True))
    finally:
        raw.chmod(stat.S_IRWXU)
    assert sorted(os.listdir(raw)) == before
    assert (tmp_path / "cache" / "mnist").resolve() in found.parents  # unpacked into the cache, not the root
    assert (found / "train-images-idx3-ubyte").is_file()


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "MNIST" / "raw").is_dir(), reason="needs ../shared/datasets")
def test_real_mnist_is_official_and_complete(tmp_path):
    ds = load_dataset(data_cfg(SHARED, tmp_path / "cache"), torch.device("cpu"))
    assert ds.official
    assert (len(ds.train), len(ds.test)) == (60000, 10000)
    assert torch.bincount(ds.test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.test.x_eval is not None and ds.test.x_eval.layout == torch.sparse_csr  # sparse eval on CPU


@pytest.mark.unit
def test_sampler_epochs_are_permutations_and_reproducible():
    split = Split(x=torch.arange(50.0).unsqueeze(1), y=torch.arange(50))
    def epoch(seed):
        s = BatchSampler(split, 10, generator(seed, "data-order"))
        return [s.next()[1] for _ in range(5)], s
    batches, s = epoch(0)
    assert sorted(torch.cat(batches).tolist()) == list(range(50))
    assert all(torch.equal(a, b) for a, b in zip(batches, epoch(0)[0]))
    assert not all(torch.equal(a, b) for a, b in zip(batches, epoch(1)[0]))
    nxt = s.next()[1]  # a new epoch draws a new permutation
    assert s.epoch == 2 and len(nxt) == 10


@pytest.mark.unit
def test_streams_are_independent():
    assert stream_seed(0, "data-order") != stream_seed(0, "probe-batch")
    assert stream_seed(0, "data-order") != stream_seed(1, "data-order")


def _load_in_subprocess(args):
    root, cache = args
    import warnings as w

    w.simplefilter("ignore")
    ds = load_mnist(data_cfg(root, cache, allow_unofficial=True), torch.device("cpu"))
    return len(ds.train)


@pytest.mark.e2e
def test_parallel_jobs_can_fill_an_empty_cache_at_once(tmp_path):
    """The first `make mnist-bn` on a machine starts both jobs at once on an empty cache."""
    import multiprocessing as mp

    root = write_synthetic_mnist(tmp_path / "root", n_train=3000, n_test=500)
    with mp.get_context("spawn").Pool(4) as pool:
        sizes = pool.map(_load_in_subprocess, [(root, tmp_path / "cache")] * 4)
    assert sizes == [3000] * 4
    assert not list((tmp_path / "cache").rglob("*.part")) and not list((tmp_path / "cache").rglob("*.tmp"))


@pytest.mark.unit
def test_a_second_idx_dataset_is_one_config_file(tmp_path):
    """configs/data/fashion_mnist.yaml: its own folder, checksums and cache; MNIST's files are not taken for it."""
    root = tmp_path / "root"
    write_synthetic_mnist(root, n_train=60, n_test=20)
    (root / "MNIST").rename(root / "FashionMNIST")  # the same IDX layout under Fashion-MNIST's folder
    cfg = make_config("experiment=mnist_bn", "data=fashion_mnist", f"data.root={root}",
                      f"data.cache_dir={tmp_path / 'cache'}", "data.download=false").data
    with pytest.raises(DataError, match="md5"):  # not the official Fashion-MNIST files
        load_dataset(cfg, torch.device("cpu"))
    cfg.allow_unofficial = True
    with pytest.warns(UserWarning, match="UNOFFICIAL"):
        ds = load_dataset(cfg, torch.device("cpu"))
    assert ds.name == "fashion_mnist" and ds.official is False and len(ds.train) == 60
    assert (tmp_path / "cache" / "fashion_mnist").is_dir() and not (tmp_path / "cache" / "mnist").exists()
    assert ds.source == str(root / "FashionMNIST" / "raw")


@pytest.mark.unit
def test_a_config_without_checksums_loads_and_is_never_called_official(tmp_path):
    root = tmp_path / "root"
    write_synthetic_mnist(root, n_train=60, n_test=20)
    cfg = make_config("experiment=mnist_bn", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                      "data.name=my_digits", "data.sha256=null", "data.gz_md5=null", "data.download=false").data
    ds = load_dataset(cfg, torch.device("cpu"))
    assert ds.official is False and ds.name == "my_digits"


@pytest.mark.unit
def test_an_idx_file_whose_header_lies_is_a_clear_error(tmp_path):
    from bnrepro.data import read_idx

    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2 + bytes(7))
    with pytest.raises(DataError, match="the header says"):
        read_idx(path)


@pytest.mark.unit
def test_train_py_finds_the_same_data_as_make(monkeypatch):
    """The data root's default: BNREPRO_DATA, else ../shared/datasets beside the checkout, else ./data in it."""
    from bnrepro import paths

    monkeypatch.setenv("BNREPRO_DATA", "/somewhere")
    assert make_cfg("experiment=mnist_bn").data.root == "/somewhere"
    monkeypatch.delenv("BNREPRO_DATA")
    expected = paths.SHARED_DATA if paths.SHARED_DATA.is_dir() else paths.PROJECT_ROOT / "data"
    assert make_cfg("experiment=mnist_bn").data.root == str(expected)
    assert make_cfg("experiment=cifar_bn").data.root == str(expected)
