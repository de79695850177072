"""The benchmark script still runs against the current API, without Hydra (its timings are not
asserted): a few steps of every variant on a tiny backbone, the paper's backbones built from
their configs the way it builds them on a GPU, and a report that keeps what was measured."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from omegaconf import OmegaConf

from fggp_repro.cli.estimate import bench_report

pytestmark = pytest.mark.slow  # the benchmark and the device check's dry mode

#: run a script with Hydra and OmegaConf impossible to import, as on a bare GPU machine
WITHOUT_HYDRA = r"""
import runpy, sys
class NoHydra:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hydra", "omegaconf"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, NoHydra())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", REPO / "scripts/benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_every_variant_without_hydra_and_writes_its_report(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_HYDRA, "scripts/benchmark.py", "--backbones", "vgg_tiny",
         "--steps", "2", "--workers", "0", "--device", "cpu", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ratio") == 5 and "failed" not in result.stdout
    [path] = tmp_path.glob("*.json")
    report = json.loads(path.read_text())
    assert bench_report(report["device"], tmp_path) == (report, path)  # where dry runs look
    entry = report["backbones"]["vgg_tiny"]
    assert set(entry["images_per_second"]) == {
        "authors_style", "plain", "eager", "default", "default_fggp", "default_bf16"
    }  # fmt: skip
    assert all(rate > 0 for rate in entry["images_per_second"].values())
    assert entry["epoch_wall"]["wall_seconds_per_epoch"] > 0
    assert entry["epoch_wall"]["checkpoint_seconds"] > 0
    assert set(entry["pruning_event_seconds"]) >= {"fggp", "gmp", "granet", "rigl", "synflow"}
    assert entry["grid_device_hours"] > 0 and report["torch"] == torch.__version__


def test_a_failing_variant_is_recorded_and_the_report_is_on_disk_at_once(benchmark, tmp_path):
    report = benchmark.Report(tmp_path / "r.json", {"device": "d"})
    report.measure("net", "images_per_second", "fast", lambda: 10.0)
    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert on_disk["backbones"]["net"]["images_per_second"] == {"fast": 10.0}

    def crashes():
        raise RuntimeError("accessing tensor output of CUDAGraphs")

    assert report.measure("net", "images_per_second", "graph", crashes) is None
    report.measure("net", "images_per_second", "slow", lambda: 5.0)
    entry = json.loads((tmp_path / "r.json").read_text())["backbones"]["net"]
    assert entry["images_per_second"] == {"fast": 10.0, "graph": None, "slow": 5.0}
    assert "CUDAGraphs" in entry["errors"]["graph"] and "Traceback" in entry["errors"]["graph"]


def test_the_benchmark_reads_every_shipped_backbone_and_pruner_as_omegaconf_does(benchmark):
    for path in [*(REPO / "conf/backbone").glob("*.yaml"), *(REPO / "conf/pruner").glob("*.yaml")]:
        expected = OmegaConf.to_container(OmegaConf.load(path))
        assert benchmark.read_flat_yaml(path) == expected, path.name


def test_benchmark_builds_the_paper_backbones_from_their_configs(benchmark):
    for name, parameters in (("vgg19", 20_040_522), ("resnet50", 23_520_832)):
        model = benchmark.model_for(name, torch.device("cpu"))
        assert sum(p.numel() for p in model.parameters()) == parameters


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU mode is the device check itself")
def test_the_device_check_runs_its_cpu_dry_mode_and_keeps_its_output(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    result = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=REPO, capture_output=True,
                            text=True, timeout=600, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (out / "summary.txt").read_text()
    assert "mode cpu-dry" in summary and summary.count(" ok in ") == 3, summary
    [bench] = (out / "bench").glob("*.json")
    assert json.loads(bench.read_text())["backbones"]["vgg_tiny"]["images_per_second"]
    runs = json.loads((out / "runs.json").read_text())
    assert sorted(r["pruner"] for r in runs) == ["fggp", "granet"]
    assert all(r["status"] == "completed" and r["step_path"] == "eager" for r in runs)
    assert all(r["checkpoint_seconds"] > 0 for r in runs)  # one after each of two epochs
