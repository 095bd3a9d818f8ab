"""Provenance: the dirty flag and code.diff speak of code and config, not of the results the targets rewrite."""

import pytest

from bnrepro import runinfo

pytestmark = pytest.mark.e2e


def test_rewritten_results_do_not_make_the_tree_dirty(tmp_path, monkeypatch, git_repo):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "metrics.csv").write_text("a\n")
    (tmp_path / "train.py").write_text("x = 1\n")
    git_repo.commit()
    monkeypatch.setattr(runinfo, "PROJECT_ROOT", tmp_path)
    (tmp_path / "results" / "metrics.csv").write_text("b\n")  # what `make cifar-bn` does before `make lp-norm`
    assert runinfo.git_state()["git_dirty"] is False
    (tmp_path / "train.py").write_text("x = 2\n")
    assert runinfo.git_state()["git_dirty"] is True
    runinfo.save_code_diff(tmp_path / "results")
    diff = (tmp_path / "results" / "code.diff").read_text()
    assert "train.py" in diff and "metrics.csv" not in diff


def test_a_new_untracked_file_makes_the_tree_dirty_and_goes_into_code_diff(tmp_path, monkeypatch, git_repo):
    (tmp_path / ".gitignore").write_text("/runs/\n")
    (tmp_path / "train.py").write_text("x = 1\n")
    git_repo.commit()
    monkeypatch.setattr(runinfo, "PROJECT_ROOT", tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "run.json").write_text("{}\n")  # ignored: not code
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "new.csv").write_text("a\n")  # results: not code
    assert runinfo.git_state()["git_dirty"] is False
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "my_experiment.yaml").write_text("experiment_name: mine\n")  # a new config: code
    assert runinfo.git_state()["git_dirty"] is True
    out = tmp_path / "out"
    out.mkdir()
    runinfo.save_code_diff(out)
    diff = (out / "code.diff").read_text()
    assert "configs/my_experiment.yaml" in diff and "+experiment_name: mine" in diff
    assert "new.csv" not in diff and "run.json" not in diff
