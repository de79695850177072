"""The command line end to end on synthetic data, its record, and its answers to bad input."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from fggp_repro.collect import main as table_main

FAST = ["experiment=demo", "train.epochs=2", "data.train_size=256", "data.test_size=128"]
FAST += ["schedule.interval=2", "train.progress=false"]
REQUIRED = {
    "backbone", "pruner", "target_sparsity", "init", "seed", "dataset", "final_test_acc",
    "achieved_sparsity", "per_layer", "params_total", "params_prunable", "epochs",
    "train_seconds", "images_per_second", "status", "config", "package_version", "git_commit",
    "torch_version", "device_name",
}  # fmt: skip


def record_files(root: Path) -> list[Path]:
    return sorted(root.rglob("result.json"))


@pytest.fixture(scope="module")
def fggp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    args = [*FAST, "pruner=fggp", "sparsity=0.9", "init=sparse50", "seed=3", f"output_root={root}"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return root, args


def test_cli_writes_a_complete_record_in_a_config_derived_directory(fggp_run):
    root, _ = fggp_run
    path = root / "synthetic/vgg_tiny/fggp/s0.9/sparse50/seed3/result.json"
    assert record_files(root) == [path]
    record = json.loads(path.read_text())
    assert record.keys() >= REQUIRED
    assert record["status"] == "completed"
    assert (record["backbone"], record["pruner"], record["init"]) == (
        "vgg_tiny",
        "fggp",
        "sparse50",
    )
    assert (record["target_sparsity"], record["seed"], record["dataset"]) == (0.9, 3, "synthetic")
    assert record["synthetic_data"] is True
    assert 0.0 <= record["final_test_acc"] <= 100.0
    active = sum(layer["active"] for layer in record["per_layer"])
    # the authors' density base (the default): vgg_tiny's conv/linear parameters are all but its
    # 2 x 240 BN ones; the 3 x 16 x 9 first-conv weights and 250 biases are never pruned
    base = record["params_conv_linear"]
    assert base == record["params_total"] - 2 * (16 + 32 + 64 + 64 + 64)
    assert base - record["params_prunable"] == 3 * 16 * 9 + (16 + 32 + 64 + 64 + 64 + 10)
    assert active == round(0.1 * base) - (base - record["params_prunable"])
    assert record["achieved_sparsity"] == pytest.approx(1 - active / record["params_prunable"])
    assert record["achieved_sparsity_conv_linear"] == pytest.approx(0.9, abs=1 / base)
    assert record["achieved_sparsity"] > 0.9
    assert sum(layer["numel"] for layer in record["per_layer"]) == record["params_prunable"]
    assert record["params_prunable"] < record["params_total"]
    assert record["config"]["pruner"]["rate"] == 0.5
    assert record["config"]["pruner"]["order"] == "gradient_first"
    assert record["epochs"] == 2 and record["images_per_second"] > 0
    metrics = (path.parent / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in metrics] == [1, 2]
    assert "test_acc" in json.loads(metrics[-1])


def test_completed_run_is_kept_not_retrained(fggp_run):
    root, args = fggp_run
    path = record_files(root)[0]
    before = (path.stat().st_mtime_ns, path.read_text())
    result = run_cli(*args)
    assert result.returncode == 0
    assert (path.stat().st_mtime_ns, path.read_text()) == before


def test_sweep_over_pruners_and_dense_record(tmp_path):
    result = run_cli(
        "--multirun", *FAST, "pruner=dense,gmp", "sparsity=0.95", f"output_root={tmp_path}",
        "masking.density_base=prunable",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    dense = json.loads((tmp_path / "synthetic/vgg_tiny/dense/seed1/result.json").read_text())
    gmp = json.loads(
        (tmp_path / "synthetic/vgg_tiny/gmp/s0.95/dense/seed1/result.json").read_text()
    )
    assert (dense["init"], dense["target_sparsity"], dense["achieved_sparsity"]) == (
        "n/a",
        0.0,
        0.0,
    )
    active = sum(layer["active"] for layer in gmp["per_layer"])
    assert active == round(0.05 * gmp["params_prunable"])  # exact over the prunable weights


BAD_INPUT = {
    "unknown backbone": ["backbone=vgg99"],
    "unknown pruner": ["pruner=magic"],
    "sparsity above 1": ["sparsity=1.5"],
    "sparsity zero": ["sparsity=0"],
    "sparse50 below 50%": ["init=sparse50", "sparsity=0.3"],
    "cifar10 missing offline": ["data.root=nowhere"],
    "mistyped key": ["train.epochz=3"],
    "wrong type": ["pruner.rate=high"],
    "unknown init": ["init=sparse90"],
    "preset mismatch": ["data=cifar10"],
    "sweep with one bad value": ["--multirun", "sparsity=0.9,1.2"],
    "sweep with one bad combination": ["--multirun", "init=dense,sparse50", "sparsity=0.3"],
    "cuda without a gpu": ["train.device=cuda"],
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, case):
    if case.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    base = [] if case.startswith("cifar10") else FAST
    result = run_cli(*base, *BAD_INPUT[case], f"output_root={tmp_path}")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("fggp-repro: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


def test_corrupt_existing_record_is_reported_and_kept(tmp_path):
    run_dir = tmp_path / "synthetic/vgg_tiny/gmp/s0.9/dense/seed1"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text('{"status": "compl')
    result = run_cli(*FAST, "pruner=gmp", "sparsity=0.9", f"output_root={tmp_path}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "unreadable results file" in result.stderr
    assert (run_dir / "result.json").read_text() == '{"status": "compl'


def test_diverging_run_writes_a_failed_record_but_never_over_a_completed_one(tmp_path):
    args = [*FAST, "pruner=gmp", "sparsity=0.9", f"output_root={tmp_path}"]
    path = tmp_path / "synthetic/vgg_tiny/gmp/s0.9/dense/seed1/result.json"
    failed = run_cli(*args, "optim.lr=1e30")
    assert failed.returncode == 1 and "training failed" in failed.stderr
    record = json.loads(path.read_text())
    assert record["status"] == "failed" and "TrainingDiverged" in record["reason"]

    assert run_cli(*args).returncode == 0  # a failed record does not block a rerun
    completed = path.read_text()
    metrics = (path.parent / "metrics.jsonl").read_text()
    rerun = run_cli(*args, "optim.lr=1e30", "skip_completed=false")
    assert rerun.returncode == 1 and "was kept" in rerun.stderr
    assert path.read_text() == completed
    assert (path.parent / "metrics.jsonl").read_text() == metrics


def test_table_skips_corrupt_records_and_summarises_the_rest(fggp_run, tmp_path, capsys):
    root, _ = fggp_run
    bad = tmp_path / "x" / "result.json"
    bad.parent.mkdir()
    bad.write_text("not json")
    shutil.copytree(root, tmp_path / "good")
    plot = tmp_path / "accuracy.png"
    table_main([str(tmp_path), "--plot", str(plot)])
    out, err = capsys.readouterr()
    assert "skipped: unreadable results file" in err
    assert "fggp" in out and "sparse50" in out and "+-" in out
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert bad.read_text() == "not json"
