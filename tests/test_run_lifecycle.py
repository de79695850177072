"""How a run ends when things go wrong around it: a failure in training keeps its traceback,
and two processes of one run never both train."""

import json
import os
import subprocess
import sys

import pytest
from conftest import CLI, FAST, REPO

pytestmark = pytest.mark.slow  # runs through the command line


def record_files(root):
    return sorted(root.rglob("result.json"))


INJECTED = """import sys, fggp_repro.cli.main, fggp_repro.pruners.gmp as gmp
def broken(self, *args):
    return len(None)
setattr(gmp.GMP, sys.argv.pop(1), broken)
sys.argv[0] = "fggp-repro"
fggp_repro.cli.main.main()
"""


@pytest.mark.parametrize(
    ("method", "caller"),
    [("select", "gradual.py"), ("at_init", "training/state.py")],  # in the loop; before it
)
def test_a_failure_keeps_its_traceback_in_the_record_and_the_log(tmp_path, method, caller):
    result = subprocess.run(
        [sys.executable, "-c", INJECTED, method, *FAST, "pruner=gmp", f"output_root={tmp_path}"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "TypeError" in line and "traceback in" in line and "Traceback" not in result.stderr
    [path] = record_files(tmp_path)
    record = json.loads(path.read_text())
    assert record["status"] == "failed" and record["pruner"] == "gmp"
    assert "in broken" in record["traceback"] and "TypeError" in record["traceback"]
    log = (path.parent / "fggp-repro.log").read_text()
    assert "in broken" in log and caller in log


def test_two_identical_commands_train_once(tmp_path):
    """The second waits for the first, then keeps its record: one training, one metrics file."""
    command = [*CLI, *FAST, "pruner=gmp", "seed=11", f"output_root={tmp_path}"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    processes = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=240)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    joined = "".join(outputs)
    assert joined.count("] - training vgg_tiny / gmp") == 1, joined
    assert "waiting for it to end" in joined or "already completed" in joined
    [path] = record_files(tmp_path)
    assert len((path.parent / "metrics.jsonl").read_text().splitlines()) == 2
