"""Results records: the files a run directory holds (one `result.json` per run, written
atomically by foundations.files, read back defensively), and what a record says of its
environment."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fggp_repro
from fggp_repro.foundations.errors import ResultsError

if TYPE_CHECKING:
    import torch

RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"  # one row per epoch, beside the record
MODEL_FILE = "model.pt"  # the final weights and masks, where checkpoint.save_model
CHECKPOINT_DIRECTORY = "checkpoints"


def read_record(path: Path) -> dict[str, Any]:
    """Load one result.json; a corrupt or foreign file is a ResultsError naming it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"unreadable results file {path}: {error}") from None
    if not isinstance(record, dict) or "status" not in record:
        raise ResultsError(f"{path} is not a fggp-repro result record")
    return record


def missing_files(run_dir: Path, record: dict[str, Any] | None = None) -> list[str]:
    """The files a completed run wrote beside its record that are gone: its metrics, and its
    model where its config saved one. None for a run that did not complete."""
    try:
        record = record if record is not None else read_record(Path(run_dir) / RESULT_FILE)
    except ResultsError:
        return []
    if record.get("status") != "completed":
        return []
    checkpoint = (record.get("config") or {}).get("checkpoint") or {}
    expected = [METRICS_FILE, *([MODEL_FILE] if checkpoint.get("save_model", False) else [])]
    return [name for name in expected if not (Path(run_dir) / name).is_file()]


def existing_record(path: Path, run_id: str, skip_completed: bool = True) -> dict[str, Any] | None:
    """The record already at `path`, if any. A corrupt one is a ResultsError unless it is to be
    replaced (`skip_completed` false); one of another config (or of an older release, without
    a run id) is always a ResultsError: it is never reused nor overwritten."""
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except ResultsError as error:
        if skip_completed:
            raise ResultsError(f"{error} (remove it, or set skip_completed=false)") from None
        return None
    if record.get("run_id") != run_id:
        raise ResultsError(
            f"{path} holds the record of another configuration (run id "
            f"{record.get('run_id', 'none')}, this one is {run_id}); move it away to run here"
        )
    return record


def git_commit() -> str | None:
    """The commit of the source tree the package runs from, marked '-dirty' if modified."""
    source = Path(fggp_repro.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    """The device's model, as records, benchmark reports and time estimates name it."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def environment(device: torch.device) -> dict[str, Any]:
    import torch

    return {
        "package_version": fggp_repro.__version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "device_name": device_name(device),
    }
