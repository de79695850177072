"""Which GPU a job trains on.

`train.device=auto` on a machine with several visible GPUs takes a slot from a pool shared by
every job on the machine (whichever launcher started them: joblib workers, submitit_local,
several shells): slot i is GPU i mod n, and a job takes the lowest free slot, so concurrent jobs
spread over the GPUs evenly (two jobs on two GPUs get one each; a fifth job on four GPUs shares
GPU 0). A slot is an exclusive lock on a file, held while the job runs and released by the
operating system when the process ends, even if it is killed. An explicit `cuda:N`, or a single
visible GPU (SLURM and submitit set CUDA_VISIBLE_DEVICES per job), needs no pool.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

import torch


class GpuLease:
    """A held slot of the pool; `release` (or process exit) frees it."""

    def __init__(self, gpu: int, handle: int):
        self.gpu, self._handle = gpu, handle

    def release(self) -> None:
        if self._handle >= 0:
            os.close(self._handle)
            self._handle = -1


def default_pool_dir() -> Path:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all").replace(",", "-") or "none"
    return Path(tempfile.gettempdir()) / f"fggp-repro-gpus-{os.getuid()}-{visible}"


def take_slot(gpus: int, pool_dir: Path) -> GpuLease:
    """The lowest free slot of the pool for `gpus` GPUs."""
    pool_dir.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        handle = os.open(pool_dir / f"slot{slot}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return GpuLease(slot % gpus, handle)
        except BlockingIOError:
            os.close(handle)
            slot += 1


def check_available(name: str, compile_mode: str = "auto") -> None:
    """ValueError (one line) where `train.device` names a GPU this machine lacks, or
    `train.compile=cuda_graph` a device that is not a GPU."""
    device = planned_device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"train.device={name} but CUDA is not available here")
        if (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(
                f"train.device={name} but this machine has {torch.cuda.device_count()} GPU(s)"
            )
    if compile_mode == "cuda_graph" and device.type != "cuda":
        raise ValueError(
            f"train.compile=cuda_graph captures CUDA graphs, and this run trains on {device}: "
            "use train.compile=auto (eager on a CPU) or a CUDA train.device"
        )


def planned_device(name: str) -> torch.device:
    """The kind of device `train.device` will train on here, without taking a pool slot."""
    if name != "auto":
        return torch.device(name)
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def choose_device(name: str, pool_dir: Path | None = None) -> tuple[torch.device, GpuLease | None]:
    """The device for `train.device` (a GPU always with its index: `cuda` is the current one),
    and the pool slot it holds, if any."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        return device, None
    if not torch.cuda.is_available():
        return torch.device("cpu"), None
    gpus = torch.cuda.device_count()
    if gpus == 1:
        return torch.device("cuda:0"), None
    lease = take_slot(gpus, pool_dir or default_pool_dir())
    return torch.device(f"cuda:{lease.gpu}"), lease
