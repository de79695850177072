"""Hydra's submitit launcher in its local mode runs two tiny jobs end to end (the same plugin
that submits to SLURM)."""

import json

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow  # a sweep through submitit


def test_submitit_local_runs_two_jobs_and_the_sweep_reads_them_back(tmp_path):
    result = run_cli(
        "--multirun", "hydra/launcher=submitit_local", "experiment=demo", "pruner=gmp,fggp",
        "sparsity=0.9", "train.epochs=1", "data.train_size=128", "data.test_size=64",
        "schedule.interval=1", "train.progress=false", f"output_root={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("result.json")]
    assert sorted(r["pruner"] for r in records) == ["fggp", "gmp"]
    assert all(r["status"] == "completed" for r in records)
    assert "sweep of 2 run(s): 2 completed" in result.stdout
