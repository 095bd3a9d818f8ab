"""trainer.compile: the training step's forward and backward through torch.compile give the eager step's numbers to
float rounding (inductor fuses and reorders reductions, so not bitwise), with the same RNG streams and checkpoint."""

import json
import shutil

import pandas as pd
import pytest
import torch

from bnrepro import ConfigError
from bnrepro.config.plan import resolve
from bnrepro.run import train
from tests.conftest import make_cfg, make_config, small_overrides


@pytest.mark.unit
def test_compile_takes_the_autograd_step_and_leaves_the_step_probes_alone():
    assert not resolve(make_cfg("experiment=mnist_bn", "trainer.compile=default")).fused  # auto: autograd's step
    assert resolve(make_cfg("experiment=mnist_bn")).config.trainer.compile is None
    for override in ("trainer.fused_step=true", "trainer.ics_every=10"):
        with pytest.raises(ConfigError, match="trainer.compile=default"):
            make_config("experiment=mnist_bn", "trainer.compile=default", override)
    with pytest.raises(ConfigError, match="trainer.compile='fast' is not one of"):
        make_config("experiment=mnist_bn", "trainer.compile=fast")


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile on a CPU builds C++ kernels (inductor): no C++ compiler here")
@pytest.mark.parametrize("model", ["mlp", "vgg"])
def test_the_compiled_step_gives_the_eager_numbers(tmp_path, mnist_data, cifar_data, model):
    if model == "mlp":
        overrides = [*small_overrides(mnist_data, steps=200), "trainer.fused_step=false", "trainer.log_every=1"]
    else:  # a 4-conv VGG at 1/16 width, with BN. Its trajectory amplifies the compiled forward's rounding (the loss
        # differs by 1e-7 at step 1, 4e-5 at step 6, 2% at step 21): a few steps show the same computation.
        overrides = ["experiment=cifar_bn_small", "model.norm=batch", "model.layers=[64,M,128,M,256,M,512,M]",
                     "model.width=0.0625", "trainer.max_steps=4", "trainer.eval_every=2", "trainer.probe_every=2",
                     "probe.batch_size=32", "probe.layers=null", "trainer.log_every=1", "logger=none",
                     *cifar_data["overrides"]]
    eager = train(make_cfg(*overrides), tmp_path / "eager")
    compiled = train(make_cfg(*overrides, "trainer.compile=default"), tmp_path / "compiled")
    assert eager["status"] == compiled["status"] == "completed"
    assert json.loads((tmp_path / "compiled" / "run.json").read_text())["compile"] == "default"
    a, b = (pd.read_parquet(tmp_path / d / "metrics.parquet") for d in ("eager", "compiled"))
    pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))  # the same rows
    loss = (a["split"] == "train") & (a["metric"] == "loss")
    assert len(a[loss]) == overrides.count("trainer.log_every=1") * int(a["step"].max())
    torch.testing.assert_close(torch.tensor(b["value"].to_numpy()), torch.tensor(a["value"].to_numpy()),
                               rtol=1e-3, atol=1e-4)
    wa, wb = (torch.load(tmp_path / d / "model_final.pt", weights_only=True) for d in ("eager", "compiled"))
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-3, atol=1e-4)
