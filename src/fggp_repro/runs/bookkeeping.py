"""What a run writes while it trains, and what it finds again after a kill: checkpoints at
their cadence (and on a stop signal), the running metrics file, the epoch line, the tracker's
rows; and the newest intact checkpoint to resume from."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fggp_repro.foundations.errors import UserError
from fggp_repro.foundations.files import write_atomic
from fggp_repro.foundations.spec import RunSpec
from fggp_repro.loggers.base import FailSafe
from fggp_repro.runs.recording import RUNNING_METRICS_FILE, jsonl
from fggp_repro.runs.records import CHECKPOINT_DIRECTORY
from fggp_repro.training.checkpoints import load_latest, save_checkpoint
from fggp_repro.training.state import TrainState
from fggp_repro.training.trainer import epoch_line

log = logging.getLogger(__name__)


def checkpoint_due(spec: RunSpec, epoch: int, since_last: float) -> bool:
    """At the end of every `checkpoint.every`-th epoch but the last, once `min_seconds` have
    passed since the last checkpoint (or the start): a checkpoint costs a GPU epoch's time."""
    every = spec.checkpoint.every
    return (
        bool(every)
        and epoch % every == 0
        and epoch < spec.train.epochs
        and since_last >= spec.checkpoint.min_seconds
    )


class RunBook:
    """A run directory's files while the run trains, and its tracker's epoch rows."""

    def __init__(self, spec: RunSpec, output_dir: Path, tracker: FailSafe):
        self.spec, self.tracker = spec, tracker
        self.checkpoints = output_dir / CHECKPOINT_DIRECTORY
        self.metrics = output_dir / RUNNING_METRICS_FILE
        self.last_checkpoint = time.monotonic()

    def start(self, state: TrainState, resumed: bool) -> None:
        """A fresh run's metrics file starts empty; a resumed one holds the epochs its
        checkpoint holds, no more and no fewer."""
        if resumed:
            write_atomic(self.metrics, jsonl(state.history))
        else:
            self.metrics.unlink(missing_ok=True)

    def checkpoint(self, state: TrainState) -> None:
        """The whole state, now (a stop signal, or the cadence); its cost is counted."""
        started = time.perf_counter()
        keep = max(self.spec.checkpoint.keep, 1)
        save_checkpoint(self.checkpoints, state.state_dict(), state.iteration, keep)
        state.checkpoint_seconds += time.perf_counter() - started
        self.last_checkpoint = time.monotonic()

    def end_of_epoch(self, state: TrainState, row: dict[str, Any]) -> None:
        """A checkpoint where due, the epoch's metrics row, its printed line, the tracker."""
        if checkpoint_due(self.spec, state.epoch, time.monotonic() - self.last_checkpoint):
            self.checkpoint(state)
        with self.metrics.open("ab") as handle:
            handle.writelines(jsonl([state.history[-1]]))
        if self.spec.train.progress:
            tqdm.write(epoch_line(row))
        self.tracker.call("log_epoch", state.iteration, row)


def resume(state: TrainState, checkpoint_dir: Path) -> bool:
    """Load the newest intact checkpoint into `state`; say which, or why none."""
    latest = load_latest(checkpoint_dir, warn=log.warning)
    if latest is None:
        if checkpoint_dir.is_dir():
            log.warning("no intact checkpoint in %s: starting over", checkpoint_dir)
        return False
    saved, path = latest
    try:
        state.load_state_dict(saved)
    except (ValueError, KeyError, RuntimeError) as error:
        raise UserError(
            f"checkpoint {path} cannot be resumed here ({error}); remove {checkpoint_dir} "
            "to start over"
        ) from None
    where = f"epoch {state.epoch}" + (
        f", step {state.epoch_progress.position} of epoch {state.epoch + 1}"
        if state.epoch_progress
        else ""
    )
    log.info("resuming from %s (%s, iteration %d)", path, where, state.iteration)
    return True
