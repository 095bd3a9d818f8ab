"""The probe experiments through the real entry points, shrunk: a multirun per experiment, then the collection
step and the figures, from stored metrics only."""

import json

import pandas as pd
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.e2e

TINY_VGG = ["model.width=0.0625", "trainer.max_steps=12", "trainer.eval_every=6", "trainer.batch_size=16",
            "probe.batch_size=16", "logger=none"]

CASES = {  # experiment: (sweep, jobs, metrics it must record, figures)
    "ics": (["model.norm=none,batch", "optim.lr=0.1", "trainer.ics_every=4"], 2,
            {"ics/layer5/l2", "ics/layer10/cos"}, ["fig_ics"]),
    "landscape": (["model.norm=none,batch", "trainer.landscape_every=4"], 2,
                  {"landscape/loss_min", "landscape/gpred_max", "landscape/beta", "landscape/eta/0.05/gpred",
                   "landscape/eta/0.4/loss"},
                  ["fig_landscape", "fig_santurkar11_gpred_vs_eta", "fig_edge_of_stability"]),
    "lp_norm": (["model.norm=none,linf", "trainer.probe_every=6", "trainer.landscape_every=4"], 2,
                {"act/layer11/pooled/p50", "landscape/gpred_max"}, ["fig_lp_norm", "fig_lp_norm_landscape"]),
    # make cifar-probes-cpu's two sweeps in one: its probes at its settings, standard, BN and one lp normaliser
    "cifar_probes_cpu": (["model.norm=none,batch,l2", "optim.lr=0.1", "trainer.ics_every=4",
                          "trainer.landscape_every=4"], 3,
                         {"ics/layer5/l2", "ics/layer10/cos", "landscape/gpred_max", "landscape/gnorm"},
                         ["fig_ics", "fig_landscape", "fig_santurkar11_gpred_vs_eta", "fig_lp_norm",
                          "fig_lp_norm_landscape", "fig_edge_of_stability"]),
}


def collect_and_draw(sweep_dir, results, name):
    assert run_cli(str(sweep_dir), "--out", str(results / name), script="collect.py").returncode == 0
    return run_cli(name, "--results", str(results), script="figures.py")


@pytest.mark.parametrize("experiment", list(CASES))
def test_vgg_probe_experiment_end_to_end(tmp_path, cifar_data, experiment):
    sweep, n_jobs, wanted, figures = CASES[experiment]
    res = run_cli("-m", f"experiment={experiment}", *sweep, *TINY_VGG, f"hydra.sweep.dir={tmp_path / 'runs'}",
                  *cifar_data["overrides"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = sorted(p.parent for p in (tmp_path / "runs").glob("*/run.json"))
    assert len(jobs) == n_jobs
    for job in jobs:
        assert json.loads((job / "run.json").read_text())["status"] == "completed"
        m = pd.read_parquet(job / "metrics.parquet")
        assert wanted <= set(m["metric"].astype(str))
        assert m.loc[m["split"] == "probe", "value"].notna().all()
    drawn = collect_and_draw(tmp_path / "runs", tmp_path / "results", experiment)
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    for name in figures:
        assert (tmp_path / "results" / experiment / f"{name}.png").stat().st_size > 5000


def test_dln_sweep_end_to_end(tmp_path):
    res = run_cli("-m", "experiment=dln", "model.norm=none,batch,l2", "trainer.max_steps=100", "trainer.ics_every=20",
                  "trainer.landscape_every=20", "trainer.eval_every=50", "logger=none",
                  f"hydra.sweep.dir={tmp_path / 'runs'}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    drawn = collect_and_draw(tmp_path / "runs", tmp_path / "results", "dln")
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    folder = tmp_path / "results" / "dln"
    for name in ("fig_dln_loss", "fig_dln_ics", "fig_dln_landscape_lr1e-06", "fig_dln_lp_landscape",
                 "fig_dln_gpred_vs_eta"):
        assert (folder / f"{name}.png").stat().st_size > 5000
    assert pd.read_csv(folder / "runs.csv")["data"].eq("linear").all()  # figures say "synthetic data"
    summary = pd.read_csv(folder / "summary.csv")
    assert sorted(summary["variant"]) == ["batch", "l2", "none"]
    for col in ("final_train_loss", "ics_layer9_cos_median", "ics_layer17_l2_median", "landscape_beta_max",
                "landscape_gpred_median", "landscape_loss_range_median"):
        assert summary[col].notna().all(), col
    assert "final_test_acc" not in summary.columns  # a regression task has no accuracy


def both_networks_at_two_rates(tmp_path, experiment: str, *probes: str) -> list[pd.DataFrame]:
    """make <experiment>'s sweep, shrunk to both networks at lr 0.1 and 1 for 40 steps: each job's metrics."""
    res = run_cli("-m", f"experiment={experiment}", "optim.lr=0.1,1", "trainer.max_steps=40", *probes,
                  "trainer.eval_every=20", "logger=none", f"hydra.sweep.dir={tmp_path / 'runs'}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = sorted(p.parent for p in (tmp_path / "runs").glob("*/run.json"))
    assert len(jobs) == 4
    return [pd.read_parquet(job / "metrics.parquet") for job in jobs]


def test_mnist_eos_end_to_end(tmp_path):
    """make mnist-eos's sweep, shrunk: β probed, collected and drawn."""
    for m in both_networks_at_two_rates(tmp_path, "mnist_eos", "trainer.landscape_every=10"):
        assert (m["metric"].astype(str) == "landscape/beta").sum() == 4  # steps 0, 10, 20, 30
    drawn = collect_and_draw(tmp_path / "runs", tmp_path / "results", "mnist_eos")
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert (tmp_path / "results" / "mnist_eos" / "fig_edge_of_stability.png").stat().st_size > 5000


def test_mnist_init_end_to_end(tmp_path):
    """make mnist-init's sweep, shrunk to 6 layers: both networks read at initialisation, collected and drawn."""
    res = run_cli("-m", "experiment=mnist_init", "model.hidden=[20,20,20,20,20,20]", "logger=none",
                  f"hydra.sweep.dir={tmp_path / 'runs'}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = sorted(p.parent for p in (tmp_path / "runs").glob("*/run.json"))
    assert len(jobs) == 2
    for job in jobs:
        m = pd.read_parquet(job / "metrics.parquet")
        init = m[m["metric"].astype(str).str.startswith("init/") & (m["step"] == 0)]
        assert len(init) == 6 + 7 and init["value"].notna().all()  # 6 ranks, 7 weights' gradient norms
    drawn = collect_and_draw(tmp_path / "runs", tmp_path / "results", "mnist_init")
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert (tmp_path / "results" / "mnist_init" / "fig_init_depth.png").stat().st_size > 5000


def test_mnist_population_end_to_end(tmp_path):
    """make mnist-population's sweep, shrunk: the three variants train, are collected and drawn."""
    res = run_cli("-m", "experiment=mnist_population", "trainer.max_steps=30", "trainer.eval_every=10", "logger=none",
                  f"hydra.sweep.dir={tmp_path / 'runs'}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    variants = {pd.read_parquet(p)["variant"].iloc[0] for p in (tmp_path / "runs").glob("*/metrics.parquet")}
    assert variants == {"none", "batch", "batch_population"}
    drawn = collect_and_draw(tmp_path / "runs", tmp_path / "results", "mnist_population")
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert (tmp_path / "results" / "mnist_population" / "fig_variants.png").stat().st_size > 5000


def test_mnist_eff_lr_end_to_end(tmp_path):
    """make mnist-eff-lr's sweep, shrunk: the weight probe read at every probe, collected and drawn."""
    for m in both_networks_at_two_rates(tmp_path, "mnist_eff_lr", "trainer.probe_every=10"):
        eff = m[m["metric"].astype(str) == "weights/layer2/eff_lr"]
        assert list(eff["step"]) == [0, 10, 20, 30, 40] and (eff["value"] > 0).all()
    drawn = collect_and_draw(tmp_path / "runs", tmp_path / "results", "mnist_eff_lr")
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert (tmp_path / "results" / "mnist_eff_lr" / "fig_effective_lr.png").stat().st_size > 5000


def sweeps_with_warmup(tmp_path, experiment: str, common: list[str], warmup_steps: int) -> pd.DataFrame:
    """make <experiment>'s two sweeps, shrunk: the plain grid, then the standard network with a warm-up, collected
    into one results folder and drawn; its runs.csv."""
    assert run_cli("-m", *common, f"hydra.sweep.dir={tmp_path / 'runs' / 'plain'}").returncode == 0
    res = run_cli("-m", *common, "model.norm=none", f"optim.warmup_steps={warmup_steps}",
                  f"hydra.sweep.dir={tmp_path / 'runs' / 'warmup'}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    drawn = collect_and_draw(tmp_path / "runs", tmp_path / "results", experiment)
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert (tmp_path / "results" / experiment / "fig_warmup.png").stat().st_size > 5000
    return pd.read_csv(tmp_path / "results" / experiment / "runs.csv")


def test_mnist_warmup_end_to_end(tmp_path):
    """One variant each, in one results folder; the warm-up changes the first steps' training loss."""
    runs = sweeps_with_warmup(tmp_path, "mnist_warmup", ["experiment=mnist_warmup", "optim.lr=10",
                                                         "trainer.max_steps=30", "trainer.eval_every=10",
                                                         "logger=none"], 10)
    assert sorted(runs["variant"]) == ["batch", "none", "none_warmup"]
    m = pd.read_parquet(tmp_path / "results" / "mnist_warmup" / "metrics.parquet")
    first = m[(m["metric"] == "loss") & (m["split"] == "train") & (m["step"] == 10)].set_index("variant")["value"]
    assert first["none_warmup"] != first["none"]


def test_cifar_warmup_end_to_end(tmp_path, cifar_data):
    """The tiny VGG: the warm-up variant beside the plain grid."""
    runs = sweeps_with_warmup(tmp_path, "cifar_warmup", ["experiment=cifar_warmup", *TINY_VGG,
                                                         *cifar_data["overrides"]], 4)
    assert sorted(runs["variant"]) == ["batch", "none", "none_warmup"]


def test_cifar_population_end_to_end(tmp_path, cifar_data):
    """make cifar-population's sweep on the tiny VGG: the three variants at one rate, collected and drawn."""
    res = run_cli("-m", "experiment=cifar_population", *TINY_VGG, *cifar_data["overrides"],
                  f"hydra.sweep.dir={tmp_path / 'runs'}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    drawn = collect_and_draw(tmp_path / "runs", tmp_path / "results", "cifar_population")
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "results" / "cifar_population" / "runs.csv")
    assert sorted(runs["variant"]) == ["batch", "batch_population", "none"] and set(runs["lr"]) == {0.1}
    assert (tmp_path / "results" / "cifar_population" / "fig_variants.png").stat().st_size > 5000
