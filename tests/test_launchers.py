"""Launchers: jobs side by side on one machine, and SLURM through submitit (tested here through the parameters it
would submit, and end to end through submitit's local executor, requeue included)."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from tests.conftest import make_cfg, run_cli, start_cli


@pytest.mark.unit
def test_the_slurm_launcher_config_becomes_the_sbatch_script(tmp_path, monkeypatch):
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    from bnrepro.config import compose

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\n")  # submitit only checks that srun exists
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    cfg = compose("experiment=mnist_bn", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                  "hydra.launcher.setup=[module load cuda]", return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher)
    # What hydra-submitit-launcher hands submitit (its launch()): queue keys as they are, the rest as slurm_<key>.
    base, init = set(OmegaConf.structured(BaseQueueConf).keys()), {"submitit_folder", "max_num_timeout", "_target_"}
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "%j",
                                     slurm_max_num_timeout=launcher["max_num_timeout"])
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in launcher.items() if k not in init})
    script = executor._executor._make_submission_file_text("python -u job.py", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --time=240", "#SBATCH --signal=USR2@120", "#SBATCH --mem=32GB", "module load cuda"):
        assert line in script, line
    assert launcher["max_num_timeout"] == 5 and launcher["array_parallelism"] == 32


@pytest.mark.e2e
def test_submitit_runs_a_job_and_requeues_it_after_a_preemption_signal(tmp_path, mnist_data):
    """SIGUSR2 (what SLURM sends before preemption, for submitit): the run checkpoints, submitit requeues the job,
    and the job resumes; its result is the uninterrupted run's, bit for bit."""
    common = ["experiment=mnist_bn", "model.norm=batch", "trainer.max_steps=3000", "trainer.checkpoint_every=500",
              "trainer.progress_every=100", "logger=none", *mnist_data["overrides"]]
    sweep = tmp_path / "sweep"
    proc = start_cli("-m", *common, "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}",
                     stderr=subprocess.STDOUT)
    run, deadline = None, time.time() + 1200
    while run is None and time.time() < deadline:
        logs = list(sweep.glob("*/train.log"))
        if logs and "step 1000/" in logs[0].read_text():
            run = logs[0].parent
        time.sleep(0.1)
    assert run is not None, "the job did not get under way"
    os.kill(json.loads((run / "run.json").read_text())["pid"], signal.SIGUSR2)
    out, _ = proc.communicate(timeout=1800)
    assert proc.returncode == 0, out[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and 1000 <= info["resumed_from_step"] < 3000
    log = (run / "train.log").read_text()
    assert "interrupted (SIGUSR2)" in log and "resumed from step" in log

    whole = tmp_path / "whole"
    assert run_cli(*common, f"hydra.run.dir={whole}").returncode == 0
    a, b = (torch.load(d / "model_final.pt", weights_only=True) for d in (whole, run))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.e2e
def test_jobs_side_by_side_get_their_own_folders_and_share_the_cores(tmp_path, mnist_data):
    res = run_cli("-m", "experiment=mnist_bn", "model.norm=none,batch", "seed=0,1", "trainer.max_steps=60",
                  "trainer.eval_every=30", "logger=none", "hydra/launcher=parallel", f"hydra.sweep.dir={tmp_path}",
                  *mnist_data["overrides"])
    assert res.returncode == 0, res.stderr[-3000:]
    infos = [json.loads(p.read_text()) for p in tmp_path.glob("*/run.json")]
    assert len(infos) == 4 and len({i["run_dir"] for i in infos}) == 4
    assert all(i["status"] == "completed" for i in infos)
    cores = len(os.sched_getaffinity(0))
    assert all(i["threads"] * min(cores, len(infos)) <= cores for i in infos)  # workers x threads <= cores


@pytest.mark.unit
def test_a_job_gets_one_thread_for_the_mlp_and_torchs_choice_otherwise():
    """trainer.threads=null, decided per job (config.plan.resolve): the MLP's small products are faster on one
    thread, so its jobs fill the cores side by side; the VGG leaves the count to torch, which the parallel launcher's
    workers share (the test above checks workers x threads <= cores)."""
    from bnrepro.config import resolve

    assert resolve(make_cfg("experiment=mnist_bn", "hydra/launcher=parallel")).threads == 1
    assert resolve(make_cfg("experiment=cifar_bn_small", "device=cpu")).threads is None
    assert resolve(make_cfg("experiment=mnist_bn", "trainer.threads=2")).threads == 2


@pytest.mark.unit
def test_a_float_sweep_value_gives_a_clean_folder_name():
    from bnrepro.config.hydra import job_folder

    assert job_folder("optim.lr=0.30000000000000004,seed=0") == "optim.lr=0.3,seed=0"  # range(0.1,0.5,0.1)
    assert job_folder("optim.lr=1e-06,seed=12") == "optim.lr=1e-06,seed=12"  # left as written
    assert job_folder("optim.lr=0.123456789012345678") == "optim.lr=0.123456789012"
    assert job_folder("data.archive=a_b.tar.xz,model.norm=l2") == "data.archive=a_b.tar.xz,model.norm=l2"
    assert job_folder("") == "default"
