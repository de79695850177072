"""The benchmark script still runs against the current API (its timings are not asserted)."""

import subprocess
import sys

from conftest import REPO


def test_benchmark_runs_and_reports_its_ratios():
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--steps", "3", "--repeats", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ratio") == 3
