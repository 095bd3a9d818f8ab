"""The article's other experiments: the training-subset evaluation, epochs as steps, the covariate-shift probe, and
the figures and tables they are drawn into, on small real runs and synthetic metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bnrepro import ConfigError
from bnrepro.config.hydra import lr_for_batch
from bnrepro.config.schema import Shift
from bnrepro.data import Split
from bnrepro.figures.batch_size import fig_batch_size, final_accuracies
from bnrepro.figures.higher_lr import curves, fig_higher_lr, table
from bnrepro.models import MLP
from bnrepro.probes.shift import ShiftProbe, shifted
from bnrepro.run import train
from tests.conftest import make_cfg, make_config, small_overrides


@pytest.mark.unit
def test_the_batch_size_readings_run_the_same_steps_at_the_same_or_a_scaled_lr():
    assert lr_for_batch(0.1, 64, 1024) == pytest.approx(1.6) and lr_for_batch(0.1, 64, 64) == 0.1
    for batch, scaled in ((8, 0.0125), (1024, 1.6)):
        same = make_cfg("experiment=mnist_batch_size", f"trainer.batch_size={batch}")
        other = make_cfg("experiment=mnist_batch_size_scaled_lr", f"trainer.batch_size={batch}")
        assert (same.optim.lr, other.optim.lr) == (0.1, pytest.approx(scaled))
        assert same.trainer.max_steps == other.trainer.max_steps == 10000
        assert other.experiment_name == "mnist_batch_size"  # one results folder for both readings


@pytest.mark.integration
def test_eval_train_measures_a_training_subset_in_evaluation_mode(tmp_path, mnist_data):
    cfg = make_cfg(*small_overrides(mnist_data, steps=100), "trainer.eval_train=500")
    train(cfg, tmp_path)
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    ev = m[(m["split"] == "train") & (m["metric"] == "eval_acc")]
    test = m[(m["split"] == "test") & (m["metric"] == "acc")]
    assert list(ev["step"]) == list(test["step"]) and ev["value"].between(0, 1).all()
    assert ev["value"].iloc[-1] > ev["value"].iloc[0]


@pytest.mark.unit
@pytest.mark.parametrize("override,key", [("trainer.eval_train=-1", "trainer.eval_train"),
                                          ("probe.shift.contrast=[0]", "probe.shift.contrast"),
                                          ("probe.shift.classes=[11]", "probe.shift.classes"),
                                          ("probe.shift.single_images=0", "probe.shift.single_images")])
def test_bad_values_name_their_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_config("experiment=mnist_shift", override)


@pytest.mark.unit
def test_eval_train_needs_evaluations():
    with pytest.raises(ConfigError, match=r"trainer\.eval_train"):
        make_config("experiment=mnist_bn", "trainer.eval_train=100", "trainer.eval_every=0")


@pytest.mark.unit
def test_shifts_change_what_they_say():
    x, y = torch.rand(20, 4), torch.arange(20) % 10
    assert torch.equal(shifted(x, y, "contrast", 0.5)[0], x * 0.5)
    assert torch.equal(shifted(x, y, "brightness", 0.2)[0], x + 0.2)
    # within the pixel range, brightness saturates: no longer a constant offset a BN layer could remove exactly
    bright = shifted(x, y, "brightness", 0.5, (0.0, 1.0))[0]
    assert bright.max() == 1.0 and torch.equal(bright, (x + 0.5).clamp(0, 1))
    xs, ys = shifted(x, y, "classes", 3)
    assert set(ys.tolist()) == {0, 1, 2} and len(xs) == 6


def _probe(norm: str, seed: int = 0) -> tuple[MLP, ShiftProbe]:
    torch.manual_seed(seed)
    model = MLP(in_features=8, hidden=(16, 16), norm=norm)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(400, 8, generator=g)
    y = (x[:, 0] * 10).long().clamp(max=9)
    split = Split(x=x, y=y)
    spec = Shift(contrast=[1.0, 0.5], brightness=[0.0, 1.0], classes=[10, 2], reestimate_samples=200,
                 single_images=3, batches_per_image=5)
    return model, ShiftProbe(model, split, split, spec, batch_size=20, seed=seed)


@pytest.mark.integration
def test_the_shift_probe_leaves_the_network_as_it_found_it():
    model, probe = _probe("batch")
    bn = model.blocks[0].norm
    with torch.no_grad():
        bn.running_mean.fill_(0.3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    out = probe()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and bn.momentum == 0.1 and model.training
    assert {"shift/contrast/0.5/population/acc", "shift/contrast/0.5/batch/acc", "shift/classes/2/reestimated/acc",
            "shift/dependency/prob_sd"} <= set(out)
    # at no shift, re-estimated statistics on the same data are about the population's
    assert out["shift/contrast/1/batch/acc"] == pytest.approx(out["shift/contrast/1/reestimated/acc"], abs=0.1)


@pytest.mark.unit
def test_batch_statistics_undo_a_contrast_shift_and_population_statistics_do_not():
    model, probe = _probe("batch")
    out = probe()
    # The first layer is linear and BN removes any scale of its output: batch statistics see no contrast change.
    assert out["shift/contrast/0.5/batch/acc"] == pytest.approx(out["shift/contrast/1/batch/acc"], abs=0.02)
    assert out["shift/contrast/0.5/population/act_p99"] != pytest.approx(out["shift/contrast/1/population/act_p99"])


@pytest.mark.unit
def test_without_batch_statistics_one_image_ignores_its_batch():
    _, probe = _probe("none")
    out = probe()
    assert out["shift/dependency/prob_sd"] == pytest.approx(0, abs=1e-6)
    assert out["shift/dependency/flip_rate"] == 0
    assert not any("/batch/" in k or "/reestimated/" in k for k in out)
    _, probe = _probe("batch")
    assert probe()["shift/dependency/prob_sd"] > 0


def _metrics(rows: list[dict]) -> pd.DataFrame:
    m = pd.DataFrame(rows)
    m["split"] = pd.Categorical(m["split"], categories=["train", "test", "probe"])
    return m


@pytest.mark.unit
def test_the_batch_size_figure_reads_the_last_evaluations(tmp_path):
    rows = []
    for variant in ("none", "batch"):
        for bs in (8, 1024):
            for seed in (0, 1):
                run = f"{variant}-{bs}-{seed}"
                for step, tr, te in ((10, 0.5, 0.5), (20, 0.99 if bs == 1024 else 0.97, 0.96)):
                    base = dict(run_id=run, variant=variant, batch_size=bs, seed=seed, lr=0.1, step=step)
                    rows += [dict(base, split="train", metric="eval_acc", value=tr),
                             dict(base, split="test", metric="acc", value=te)]
    m = _metrics(rows)
    d = final_accuracies(m)
    assert len(d) == 8 and d.loc[d["batch_size"] == 1024, "gap"].round(4).eq(0.03).all()
    assert d.loc[d["batch_size"] == 8, "gap"].round(4).eq(0.01).all()
    runs = pd.DataFrame({"seed": [0, 1], "data": ["mnist", "mnist"], "data_official": [True, True]})
    assert [p.name for p in fig_batch_size(m, runs, tmp_path)] == ["fig_batch_size.png", "fig_batch_size.pdf"]


@pytest.mark.unit
def test_the_higher_lr_table_counts_steps_to_the_baselines_best(tmp_path):
    rows = []
    acc = {("none", 0.1): [0.1, 0.3, 0.5, 0.6], ("batch", 0.1): [0.1, 0.5, 0.6, 0.7], ("none", 0.5): [0.1] * 4,
           ("batch", 0.5): [0.1, 0.62, 0.7, 0.75]}
    for (variant, lr), values in acc.items():
        for seed in (0, 1):
            for step, v in zip((0, 100, 200, 300), values):
                rows.append(dict(run_id=f"{variant}-{lr}-{seed}", variant=variant, lr=lr, seed=seed, step=step,
                                 split="test", metric="acc", value=v))
    m = _metrics(rows)
    t, base = curves(m)
    tab = table(t).set_index(["variant", "lr multiple"])
    assert base == 0.1 and tab.attrs["target"] == pytest.approx(0.6)
    assert tab.loc[("none", 1.0), "steps to baseline's best"] == 300
    assert tab.loc[("batch", 1.0), "steps to baseline's best"] == 200
    assert tab.loc[("batch", 5.0), "steps to baseline's best"] == 100
    assert tab.loc[("none", 5.0), "steps to baseline's best"] == "never"
    assert tab.loc[("batch", 5.0), "best test acc"] == 0.75
    runs = pd.DataFrame({"seed": [0, 1], "data": ["cifar10", "cifar10"], "data_official": [False, False]})
    fig_higher_lr(m, runs, tmp_path)
    assert (tmp_path / "table_higher_lr.md").read_text().count("\n|") >= 5 and np.isfinite(base)
