"""Results records: one `result.json` per run, written atomically, read back defensively."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import secrets
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fggp_repro
from fggp_repro.errors import ResultsError

if TYPE_CHECKING:
    import torch

RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"  # one row per epoch, beside the record
MODEL_FILE = "model.pt"  # the final weights and masks, where checkpoint.save_model
CHECKPOINT_DIRECTORY = "checkpoints"


TEMP_SUFFIX = ".tmp"


def write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it: a reader sees the old
    file or the new one, never half of one, even if the process dies mid-write (a killed
    writer's temporary file is removed by `remove_stale_temporaries`). The file gets the usual
    permissions for the umask, as any other file the user writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    # created as any file is (0o666 less the umask, applied by the kernel): no umask to read
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def exclusive(directory: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold `directory` for this process: a second process of the same run (two identical
    commands, a requeued job while the old one still runs) waits here until the first ends,
    then finds its record or its checkpoint. The operating system releases the lock when a
    holder dies, so a killed run never leaves its directory locked."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def nearest_existing(path: Path) -> Path:
    """`path` if it exists, else its closest existing parent: where a write to `path` would land
    (a file there means it cannot)."""
    return next(p for p in [path, *path.parents] if p.exists())


def first_missing(path: Path) -> Path | None:
    """The outermost directory of `path` that does not exist yet (what creating `path` would
    create first); None when it exists."""
    path = path.absolute()
    missing = [p for p in [path, *path.parents] if not p.exists()]
    return missing[-1] if missing else None


def remove_empty_directories(directory: Path, top: Path) -> None:
    """`directory` and its parents up to `top` (included), as long as each is an empty
    directory: what a refused command made and left empty goes, nothing else."""
    directory, top = directory.absolute(), top.absolute()
    while directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        if directory == top or top not in directory.parents:
            return
        directory = directory.parent


def write_json_atomic(path: Path, payload: Any) -> None:
    text = json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    write_atomic(path, [text.encode()])


def remove_stale_temporaries(directory: Path) -> None:
    """Temporary files a killed writer left behind (never the files they were to replace)."""
    for stale in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
