"""The benchmark script still runs against the current API (its timings are not asserted):
a few steps of every variant on a tiny backbone, and the paper's backbones built from their
configs the way it builds them on a GPU."""

import importlib.util
import json
import subprocess
import sys

import torch
from conftest import REPO

from fggp_repro.estimate import bench_report


def test_benchmark_runs_every_variant_and_writes_its_report(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--backbones", "vgg_tiny", "--steps", "2",
         "--workers", "0", "--device", "cpu", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ratio") == 3
    [path] = tmp_path.glob("*.json")
    report = json.loads(path.read_text())
    assert bench_report(report["device"], tmp_path) == (report, path)  # where dry runs look
    entry = report["backbones"]["vgg_tiny"]
    assert set(entry["images_per_second"]) == {
        "a_authors_style", "b_plain", "c_ours_dense", "d_ours_fggp", "e_ours_fastest"
    }  # fmt: skip
    assert set(entry["pruning_event_seconds"]) >= {"fggp", "gmp", "granet", "rigl", "synflow"}
    assert entry["grid_gpu_hours"] > 0 and report["torch"] == torch.__version__


def test_benchmark_builds_the_paper_backbones_from_their_configs():
    spec = importlib.util.spec_from_file_location("benchmark", REPO / "scripts/benchmark.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    for name, parameters in (("vgg19", 20_040_522), ("resnet50", 23_520_832)):
        model = benchmark.model_for(name, torch.device("cpu"))
        assert sum(p.numel() for p in model.parameters()) == parameters
