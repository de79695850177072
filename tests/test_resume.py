"""Checkpoints and resume: a run killed (SIGKILL) at any moment, or stopped by a preemption
signal, and then rerun ends bit for bit where an uninterrupted run ends; damaged checkpoints are
named and passed over; resource failures leave a clear record and no half-written file."""

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from conftest import CLI, REPO, spec

from fggp_repro.foundations import files
from fggp_repro.runs.experiment import RunFailed, run_experiment
from fggp_repro.runs.recording import failure_reason
from fggp_repro.training import checkpoints, steps

pytestmark = pytest.mark.slow  # processes killed and resumed

# 3 epochs of 15 steps, pruning every 2 steps, test after every epoch, deterministic on CPU
ARGS = ["experiment=demo", "train.epochs=3", "data.train_size=960", "data.test_size=128",
        "schedule.interval=2", "train.progress=false", "train.deterministic=true",
        "train.eval_every=1", "pruner=fggp", "sparsity=0.9", "seed=5",
        "checkpoint.min_seconds=0"]  # fmt: skip

DRIVER = r"""
import os, signal, sys
point, after, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = [0]
def counted():
    calls[0] += 1
    return calls[0] == after
def die():
    os.kill(os.getpid(), signal.SIGKILL)
from fggp_repro.training import checkpoints
from fggp_repro.training import steps
if point == "step":
    step = steps.train_step
    def train_step(*args):
        out = step(*args)
        if counted(): die()
        return out
    steps.train_step = train_step
elif point == "compiled-step-fails":  # torch.compile's function raises after running, once
    import torch
    def compile(function, **options):
        def compiled(*args):
            out = function(*args)
            if counted(): raise RuntimeError("the compiled step failed on its fifth call")
            return out
        return compiled
    torch.compile = compile
elif point == "checkpoint":
    write = checkpoints.write_atomic
    def half_written(path, chunks):
        if not counted():
            return write(path, chunks)
        header, payload = chunks
        def pieces():
            yield header
            yield bytes(payload[: len(payload) // 2])
            die()
        return write(path, pieces())
    checkpoints.write_atomic = half_written
elif point == "launcher-handler":  # what submitit installs: requeue, then exit(-1)
    def requeue(signum, frame):
        open(marker, "w").write(str(signum))
        sys.exit(-1)
    signal.signal(signal.SIGUSR2, requeue)
sys.argv = ["fggp-repro", *sys.argv[4:]]
from fggp_repro.cli.main import main
main()
"""


def cli(root: Path, *extra: str) -> list[str]:
    return [*CLI, *ARGS, f"output_root={root}", *extra]


def start(command: list[str]) -> subprocess.Popen:
    # cuBLAS needs a fixed workspace to be deterministic on a GPU
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore",
           "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def finish(command: list[str]) -> subprocess.CompletedProcess:
    process = start(command)
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def run_dir(root: Path) -> Path:
    [record] = root.rglob("result.json")
    return record.parent


def outcome(root: Path) -> tuple:
    directory = run_dir(root)
    record = json.loads((directory / "result.json").read_text())
    model = torch.load(directory / "model.pt", weights_only=True)
    return (record["final_test_acc"], record["iterations"], model["masks"], model["model"],
            (directory / "metrics.jsonl").read_bytes())  # fmt: skip


def same(a: tuple, b: tuple) -> bool:
    (acc_a, it_a, masks_a, model_a, metrics_a), (acc_b, it_b, masks_b, model_b, metrics_b) = a, b
    return (
        (acc_a, it_a, metrics_a) == (acc_b, it_b, metrics_b)
        and all(torch.equal(x, y) for x, y in zip(masks_a, masks_b, strict=True))
        and model_a.keys() == model_b.keys()
        and all(torch.equal(model_a[k], model_b[k]) for k in model_a)
    )


def interrupted_then_resumed(root: Path, kind: str) -> dict:
    """Kill or stop a run in one of several ways, then rerun the same command."""
    marker = root / "handler-called"
    if kind.startswith("kill-"):
        # both in epoch 2, after the first checkpoint: mid-epoch (after the pruning events of
        # steps 16-22, which the checkpoint does not hold), and half-way through writing the
        # checkpoint of epoch 2
        point, after = {"kill-step": ("step", 22), "kill-checkpoint": ("checkpoint", 2)}[kind]
        first = finish([sys.executable, "-c", DRIVER, point, str(after), str(marker), *ARGS,
                        f"output_root={root}"])  # fmt: skip
    else:
        signum = {"SIGTERM": signal.SIGTERM, "SIGUSR2": signal.SIGUSR2}[kind]
        command = cli(root)
        if kind == "SIGUSR2":
            command = [sys.executable, "-c", DRIVER, "launcher-handler", "0", str(marker), *ARGS,
                       f"output_root={root}"]  # fmt: skip
        process = start(command)
        deadline = time.monotonic() + 120
        while not any(root.rglob("metrics.running.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
        first = subprocess.CompletedProcess(command, process.returncode, out, err)
    left = sorted(p.name for p in root.rglob("*") if p.is_file())
    second = finish(cli(root))
    return {"first": first, "second": second, "left": left, "marker": marker.exists()}


# SIGINT and SIGUSR1 take the same handler as SIGTERM (stopping.StopRequest)
KINDS = ["kill-step", "kill-checkpoint", "SIGTERM", "SIGUSR2"]


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    roots = {kind: tmp_path_factory.mktemp(kind) for kind in ["reference", *KINDS]}
    with ThreadPoolExecutor(max_workers=3) as pool:
        reference = pool.submit(finish, cli(roots["reference"]))
        results = {kind: pool.submit(interrupted_then_resumed, roots[kind], kind) for kind in KINDS}
        assert reference.result().returncode == 0, reference.result().stderr
        return outcome(roots["reference"]), {k: (f.result(), roots[k]) for k, f in results.items()}


@pytest.mark.parametrize("kind", ["kill-step", "kill-checkpoint"])
def test_killed_run_resumes_bit_identically(chains, kind):
    reference, results = chains
    result, root = results[kind]
    assert result["first"].returncode == -signal.SIGKILL
    assert result["second"].returncode == 0, result["second"].stderr
    assert "resuming from" in result["second"].stdout
    assert same(outcome(root), reference)
    assert not any(name.endswith(".tmp") for name in (p.name for p in root.rglob("*")))


def test_kill_during_a_checkpoint_write_falls_back_to_the_previous_one(chains):
    result, _ = chains[1]["kill-checkpoint"]
    assert any(name.endswith(".tmp") for name in result["left"])  # the half-written file
    assert "resuming from" in result["second"].stdout and "iter000000015" in result["second"].stdout


@pytest.mark.parametrize("kind", ["SIGTERM", "SIGUSR2"])
def test_stop_signal_checkpoints_says_how_to_resume_and_resumes_exactly(chains, kind):
    reference, results = chains
    result, root = results[kind]
    first = result["first"]
    expected = {"SIGTERM": 128 + 15, "SIGUSR2": 255}[kind]
    assert first.returncode == expected, first.stderr
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1 and f"stopped by {kind}" in lines[0] and "rerun" in lines[0]
    assert result["marker"] == (kind == "SIGUSR2")  # the launcher's own handler ran after ours
    assert any(name.endswith(".ckpt") for name in result["left"])
    assert result["second"].returncode == 0 and "resuming from" in result["second"].stdout
    assert same(outcome(root), reference)


def test_damaged_checkpoints_are_named_and_passed_over(tmp_path):
    for iteration in (10, 20, 30):
        checkpoints.save_checkpoint(tmp_path, {"iteration": iteration}, iteration, keep=2)
    names = [p.name for p in checkpoints.checkpoints(tmp_path)]
    assert names == ["iter000000020.ckpt", "iter000000030.ckpt"]
    newest = tmp_path / "iter000000030.ckpt"
    newest.write_bytes(newest.read_bytes()[:-7])  # truncated
    warnings: list[str] = []
    state, path = checkpoints.load_latest(tmp_path, warnings.append)
    assert state == {"iteration": 20} and path.name == "iter000000020.ckpt"
    assert len(warnings) == 1 and "iter000000030.ckpt" in warnings[0] and "checksum" in warnings[0]
    (tmp_path / "iter000000020.ckpt").write_bytes(b"garbage")
    assert checkpoints.load_latest(tmp_path, warnings.append) is None and len(warnings) == 3


def test_disk_full_leaves_no_half_written_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    files.write_json_atomic(target, {"old": True})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError):
        files.write_json_atomic(target, {"new": True})
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert json.loads(target.read_text()) == {"old": True}
    assert "disk full" in failure_reason(OSError(errno.ENOSPC, "full", "x.ckpt"), "cpu")


def test_out_of_memory_ends_in_a_failed_record_that_says_what_to_do(tmp_path, monkeypatch):
    def no_memory(*args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(steps, "train_step", no_memory)
    with pytest.raises(RunFailed):
        run_experiment(spec(*ARGS), tmp_path)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "failed"
    assert "out of memory on cpu" in record["reason"] and "train.batch_size" in record["reason"]


def test_a_failed_rerun_never_replaces_a_completed_record(tmp_path, monkeypatch):
    cfg = spec(*ARGS, "train.epochs=1")
    run_experiment(cfg, tmp_path)
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}

    def broken(*args):
        raise RuntimeError("a node went away")

    monkeypatch.setattr(steps, "train_step", broken)
    cfg = dataclasses.replace(cfg, skip_completed=False)
    with pytest.raises(RunFailed, match="was kept"):
        run_experiment(cfg, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == kept


def test_a_compiled_step_failing_mid_run_leaves_the_eager_runs_result(chains, tmp_path):
    """train.compile=default whose compiled forward raises on its fifth call, after running:
    the run completes, identical to the train.compile=none run (both deterministic), its
    record names the fallback and the failure, and the console shows one line about it."""
    reference, _ = chains
    result = finish([sys.executable, "-c", DRIVER, "compiled-step-fails", "5", "-", *ARGS,
                     "train.compile=default", f"output_root={tmp_path}"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert same(outcome(tmp_path), reference)
    record = json.loads((run_dir(tmp_path) / "result.json").read_text())
    assert record["step_path"] == "default→eager"
    [fallback] = record["step_path_details"]["fallbacks"]
    assert "fifth call" in fallback["reason"] and fallback["to"] == "eager"
    assert "Traceback" in fallback["traceback"]
    console = result.stdout + result.stderr
    assert "Traceback" not in console
    [line] = [line for line in console.splitlines() if "fifth call" in line]
    assert "default failed at iteration" in line and "going on eagerly" in line


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_killed_cuda_run_resumes_bit_identically(tmp_path):
    gpu = ["train.device=cuda", "train.compile=none", "train.channels_last=false"]
    assert finish(cli(tmp_path / "reference", *gpu)).returncode == 0
    killed = tmp_path / "killed"
    first = finish([sys.executable, "-c", DRIVER, "step", "14", str(killed / "x"), *ARGS, *gpu,
                    f"output_root={killed}"])  # fmt: skip
    assert first.returncode == -signal.SIGKILL
    assert finish(cli(killed, *gpu)).returncode == 0
    assert same(outcome(killed), outcome(tmp_path / "reference"))


def test_atomic_writes_get_the_umask_without_anyone_setting_it(tmp_path, monkeypatch):
    """Reading the umask by setting it races with other threads; the kernel applies it anyway."""
    current = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *_: pytest.fail("os.umask was called"))
        files.write_atomic(tmp_path / "f.json", [b"{}"])
    finally:
        monkeypatch.undo()
        os.umask(current)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_rerun_that_dies_while_replacing_files_leaves_no_record_of_the_old_ones(
    tmp_path, monkeypatch
):
    """skip_completed=false over a completed run: the old record must not outlive the files it
    describes, whichever write the process dies in."""
    from fggp_repro.runs import recording
    from fggp_repro.runs.records import MODEL_FILE

    cfg = dataclasses.replace(spec(*ARGS, "train.epochs=1"), skip_completed=False)
    run_experiment(cfg, tmp_path)
    writes = recording.write_atomic

    def dies_writing_the_model(path, chunks):
        if path.name == MODEL_FILE:
            raise SystemExit("killed while writing model.pt")
        writes(path, chunks)

    monkeypatch.setattr(recording, "write_atomic", dies_writing_the_model)
    with pytest.raises(SystemExit):
        run_experiment(cfg, tmp_path)
    assert not (tmp_path / "result.json").exists()


def test_a_checkpoint_is_due_every_few_epochs_once_enough_time_has_passed():
    from fggp_repro.runs.bookkeeping import checkpoint_due

    base = spec(*ARGS)  # 3 epochs, checkpoint.every=1, min_seconds=0
    every_epoch = [checkpoint_due(base, epoch, 0.0) for epoch in (1, 2, 3)]
    assert every_epoch == [True, True, False]  # never after the last epoch
    timed = dataclasses.replace(base, checkpoint=dataclasses.replace(base.checkpoint,
                                                                    min_seconds=300.0))  # fmt: skip
    assert not checkpoint_due(timed, 1, 299.9) and checkpoint_due(timed, 1, 300.0)
    sparse = dataclasses.replace(base, checkpoint=dataclasses.replace(base.checkpoint, every=2))
    assert [checkpoint_due(sparse, epoch, 1e9) for epoch in (1, 2, 3)] == [False, True, False]
    never = dataclasses.replace(base, checkpoint=dataclasses.replace(base.checkpoint, every=0))
    assert not checkpoint_due(never, 1, 1e9)
    assert spec("experiment=demo").checkpoint.min_seconds == 300.0  # the default cadence
