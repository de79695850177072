"""Files written so that no reader ever sees half of one, and folders that a refused command
leaves as it found them. Standard library only."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

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
