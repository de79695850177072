"""How a run ends when things go wrong around it: a failure in training keeps its traceback,
and two processes of one run never both train."""

import json
import os
import subprocess
import sys

from conftest import CLI, FAST, REPO


def record_files(root):
    return sorted(root.rglob("result.json"))


INJECTED = """import sys, fggp_repro.cli, fggp_repro.pruners.gmp as gmp
def broken_select(self, k, iteration):
    return len(None)
gmp.GMP.select = broken_select
sys.argv[0] = "fggp-repro"
fggp_repro.cli.main()
"""


def test_a_failure_in_training_keeps_its_traceback_in_the_record_and_the_log(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", INJECTED, *FAST, "pruner=gmp", f"output_root={tmp_path}"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "TypeError" in line and "traceback in" in line and "Traceback" not in result.stderr
    [path] = record_files(tmp_path)
    record = json.loads(path.read_text())
    assert record["status"] == "failed"
    assert "in broken_select" in record["traceback"] and "TypeError" in record["traceback"]
    log = (path.parent / "fggp-repro.log").read_text()
    assert "in broken_select" in log and "gradual.py" in log


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
