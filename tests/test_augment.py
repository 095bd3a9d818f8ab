import pytest
import torch
import torch.nn.functional as F

from bnrepro.augment import random_crop_flip
from bnrepro.data import BatchSampler, Split, generator

pytestmark = pytest.mark.unit


def test_each_image_is_a_padded_crop_of_itself_maybe_flipped():
    x = torch.rand(24, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2))
    flips = 0
    for i in range(len(x)):
        matches = [(dy, dx, f) for dy in range(5) for dx in range(5) for f in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(2) if f else c)(padded[i, :, dy:dy + 8, dx:dx + 8]))]
        assert matches, i
        flips += matches[0][2]
    assert 4 <= flips <= 20  # about half


def test_augmentation_never_changes_the_data_order():
    split = Split(x=torch.rand(40, 3, 8, 8), y=torch.arange(40))
    plain = BatchSampler(split, 10, generator(0, "data-order"))
    ys_plain = [plain.next()[1] for _ in range(8)]
    g = generator(0, "augment")
    split.augment = lambda x: random_crop_flip(x, g)
    aug = BatchSampler(split, 10, generator(0, "data-order"))
    batches = [aug.next() for _ in range(8)]
    assert all(torch.equal(a, b[1]) for a, b in zip(ys_plain, batches))
    assert not torch.equal(batches[0][0], split.x.index_select(0, batches[0][1]))  # and it did augment


def test_evaluation_and_probe_batches_are_never_augmented():
    split = Split(x=torch.rand(10, 3, 8, 8), y=torch.arange(10), augment=lambda x: x * 0)
    x, _ = split.batch(torch.arange(4))
    assert torch.equal(x, split.x[:4])
    assert torch.equal(next(split.chunks(10))[0], split.x)


def test_the_memory_format_is_the_last_step_for_every_batch():
    cl = torch.channels_last
    split = Split(x=torch.rand(10, 3, 8, 8), y=torch.arange(10), memory_format=cl)
    g = generator(0, "augment")
    split.augment = lambda x: random_crop_flip(x, g)
    train_x, _ = split.batch(torch.arange(4), augment=True)  # after augmentation
    probe_x, _ = split.batch(torch.arange(4))
    eval_x = next(split.chunks(5))[0]
    for x in (train_x, probe_x, eval_x):
        assert x.is_contiguous(memory_format=cl) and not x.is_contiguous()
