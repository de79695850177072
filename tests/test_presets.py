"""Grid presets through the planned sweeper: the paper grid's size and dry run, re-launching a
finished grid (nothing runs) or one with a record removed (exactly that cell runs), the tables
written at the end of a sweep, and the cluster launcher's configuration."""

import json
import statistics

import pytest
import torch
from conftest import run_cli, spec

from fggp_repro.cli.arguments import check_launcher
from fggp_repro.cli.estimate import Rate, bench_report, epoch_time, kind_of_job
from fggp_repro.cli.sweep import planned_device_name
from fggp_repro.foundations.errors import UserError

pytestmark = pytest.mark.slow  # sweeps of the command line

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
    [fggp] = tmp_path.glob("synthetic/vgg_tiny/fggp/*/*/*/result.json")
    fggp.unlink()
    third = run_cli(*args)
    assert "1 to run, 3 already completed" in third.stdout and fggp.exists()
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("result.json")]
    plan = run_cli(*args, "sparsity=0.98", "hydra.sweeper.dry_run=true").stdout
    rate = statistics.median(r["images_per_second"] for r in records)  # 128 images an epoch
    assert f"{128 / rate:.3g} s per epoch for vgg_tiny on synthetic, cpu" in plan
    assert f"median of 4 completed run(s) under {tmp_path}" in plan


def test_an_epoch_time_is_typed_else_measured_else_benchmarked(tmp_path):
    job = spec("experiment=demo", *SMALL)  # 128 training images, fp32
    report = {"device": "Z GPU", "batch_size": 64, "backbones": {"vgg_tiny": {
        "images_per_second": {"eager": 16.0, "default": 64.0, "default_bf16": 256.0}}}}  # fmt: skip
    (tmp_path / "z-gpu.json").write_text(json.dumps(report))
    bench = bench_report("Z GPU", tmp_path)
    assert bench is not None and bench_report("Y GPU", tmp_path) is None
    assert epoch_time(job, "Z GPU", {}, {}, bench).seconds == 128 / 64.0  # the default path's
    bf16 = spec("experiment=demo", *SMALL, "train.bf16=true")
    assert epoch_time(bf16, "Z GPU", {}, {}, bench).seconds == 128 / 256.0
    measured = {kind_of_job(job, "Z GPU"): Rate(32.0, "runs")}
    assert epoch_time(job, "Z GPU", {}, measured, bench).seconds == 128 / 32.0
    assert epoch_time(job, "Z GPU", {"vgg_tiny": 5.0}, measured, bench).seconds == 5.0
    assert epoch_time(job, "Y GPU", {}, measured, None) is None  # another device
    if not torch.cuda.is_available():  # a dry run on a machine without the jobs' GPU
        assert planned_device_name("cuda") == "cuda"


def test_slurm_launcher_config_composes_without_a_cluster(tmp_path):
    result = run_cli("--multirun", "experiment=demo_grid", "hydra/launcher=slurm",
                     "hydra.launcher.partition=gpu", "hydra.sweeper.dry_run=true",
                     f"output_root={tmp_path}/x", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "26 run(s): 26 missing" in result.stdout
    assert "set hydra.sweeper.epoch_seconds.vgg_tiny=<seconds per epoch>" in result.stdout


def test_a_missing_launcher_plugin_is_a_one_line_hint(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install -e '\.\[slurm\]'"):
        check_launcher(["hydra/launcher=submitit_slurm"])
    check_launcher(["hydra/launcher=basic"])  # Hydra's own: nothing to install
