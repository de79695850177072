"""Checkpoints: the whole training state in one file, written atomically behind a checksum, so
that the newest intact one is found again after a kill, a preemption or a full disk."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fggp_repro.foundations.files import remove_stale_temporaries, write_atomic

MAGIC = b"fggp-repro checkpoint v1 sha256="
NAME = re.compile(r"iter(\d{9})\.ckpt")


class CorruptCheckpoint(Exception):
    """A checkpoint whose header or checksum does not hold."""


def to_bytes(payload: Any) -> memoryview:
    """`torch.save` into memory (for a checksum, and for an atomic write)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getbuffer()


def save_checkpoint(directory: Path, state: dict[str, Any], iteration: int, keep: int) -> Path:
    """Write `state` as iter<iteration>.ckpt, then delete all but the newest `keep`."""
    payload = to_bytes(state)
    header = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    path = directory / f"iter{iteration:09d}.ckpt"
    write_atomic(path, [header, payload])
    for old in checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if NAME.fullmatch(p.name))


def read_checkpoint(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    header, newline, payload = data.partition(b"\n")
    if not newline or not header.startswith(MAGIC):
        raise CorruptCheckpoint("not a fggp-repro checkpoint")
    if hashlib.sha256(payload).hexdigest().encode() != header[len(MAGIC) :]:
        raise CorruptCheckpoint("checksum mismatch (truncated or damaged)")
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def load_latest(directory: Path, warn: Callable[[str], None]) -> tuple[dict[str, Any], Path] | None:
    """The newest intact checkpoint; damaged ones are named through `warn` and passed over."""
    if directory.is_dir():
        remove_stale_temporaries(directory)
    for path in reversed(checkpoints(directory)):
        try:
            return read_checkpoint(path), path
        except (CorruptCheckpoint, OSError, RuntimeError, EOFError) as error:
            warn(f"skipped damaged checkpoint {path}: {error}")
    return None
