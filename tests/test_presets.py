"""Grid presets through the planned sweeper: the paper grid's size and dry run, re-launching a
finished grid (nothing runs) or one with a record removed (exactly that cell runs), the tables
written at the end of a sweep, and the cluster launcher's configuration."""

import pytest
from conftest import run_cli

from fggp_repro import cli

SMALL = ["train.epochs=1", "data.train_size=128", "data.test_size=64", "schedule.interval=1",
         "train.progress=false"]  # fmt: skip


def test_paper_preset_is_312_runs_and_its_dry_run_launches_nothing(tmp_path):
    result = run_cli(
        "--multirun", "experiment=paper", "hydra.sweeper.dry_run=true",
        "hydra.sweeper.epoch_seconds.vgg19=10", "hydra.sweeper.epoch_seconds.resnet50=30",
        f"output_root={tmp_path}/paper", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # 6 gradual pruners x 2 backbones x 3 targets x 2 initial states x 3 seeds = 216,
    # 5 own-start pruners x 2 x 3 x 3 = 90, dense x 2 backbones x 3 seeds = 6
    assert "312 run(s): 312 missing; 312 would run" in lines
    assert sum(line.startswith("missing ") for line in lines) == 312
    # 156 runs of each backbone x 160 epochs x (10 or 30) s
    assert f"estimated time of the runs to do: {156 * 160 * 40 / 3600:.1f} device-hours" in lines
    assert list(tmp_path.iterdir()) == []


def test_relaunching_a_grid_runs_only_what_is_missing_and_writes_its_tables(tmp_path):
    args = ["--multirun", "experiment=demo_grid", "seed=1", "sparsity=0.9", "init=dense",
            *SMALL, f"output_root={tmp_path}"]  # fmt: skip
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "4 to run, 0 already completed" in first.stdout  # gmp, fggp, mfgn_annealed, dense
    assert (tmp_path / "tables" / "paper_table.md").exists()
    assert "| pruner | vgg_tiny 90% dense |" in first.stdout
    again = run_cli(*args)
    assert "0 to run, 4 already completed" in again.stdout
    [fggp] = tmp_path.glob("synthetic/vgg_tiny/fggp/*/*/*/result.json")
    fggp.unlink()
    third = run_cli(*args)
    assert "1 to run, 3 already completed" in third.stdout and fggp.exists()


def test_slurm_launcher_config_composes_without_a_cluster(tmp_path):
    result = run_cli("--multirun", "experiment=demo_grid", "hydra/launcher=slurm",
                     "hydra.launcher.partition=gpu", "hydra.sweeper.dry_run=true",
                     f"output_root={tmp_path}/x", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "26 run(s): 26 missing" in result.stdout


def test_a_missing_launcher_plugin_is_a_one_line_hint(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(cli.UserError, match=r"pip install -e '\.\[slurm\]'"):
        cli.check_launcher(["hydra/launcher=submitit_slurm"])
    cli.check_launcher(["hydra/launcher=basic"])  # Hydra's own: nothing to install
