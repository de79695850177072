"""One experiment: a RunSpec in, a trained network and a result.json out. No Hydra in here, so
it runs the same from the command line, a sweep launcher, a SLURM job or a notebook.

The run is built (runs.build), resumed from its newest intact checkpoint or begun, trained
(training.trainer) with its files kept as it goes (runs.bookkeeping), and recorded
(runs.recording); any failure after its checks is recorded with its traceback.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import torch

from fggp_repro.foundations.errors import UserError
from fggp_repro.foundations.files import exclusive
from fggp_repro.foundations.spec import RunSpec
from fggp_repro.loggers.base import HEADLINE, FailSafe, NoLogger, RunInfo, group_of
from fggp_repro.runs.bookkeeping import RunBook, resume
from fggp_repro.runs.build import Built, build_network, build_state
from fggp_repro.runs.identity import run_id, run_subdir
from fggp_repro.runs.recording import (
    completed_fields,
    failure_reason,
    initial_record,
    log_to_files,
    run_line,
    write_failed_record,
    write_final_files,
)
from fggp_repro.runs.records import RESULT_FILE, existing_record, missing_files
from fggp_repro.runs.validation import total_iterations, validate
from fggp_repro.training.devices import check_available, choose_device
from fggp_repro.training.steps import FastPathFailed, step_path_for
from fggp_repro.training.stopping import Preempted, StopRequest
from fggp_repro.training.trainer import TrainOutcome, run

log = logging.getLogger(__name__)


class RunFailed(Exception):
    """A run that passed its checks failed; a failed record was written where that was possible."""


def run_experiment(
    spec: RunSpec, output_dir: Path, stop: StopRequest | None = None
) -> dict[str, Any]:
    """Validate, train (resuming from the newest intact checkpoint), and write
    `output_dir/result.json`; return the record.

    Bad input raises UserError before anything is written. A completed record of this config
    already in `output_dir` is kept and returned unless `skip_completed` is false; then it is
    replaced only by a run that completes too (a failed rerun leaves it and its metrics as they
    were). One process at a time trains a run: another one waits for it, then reuses its
    record or resumes from its checkpoint. A stop request checkpoints the run and raises
    Preempted.
    """
    validate(spec)
    return run_checked(spec, output_dir, stop)


def run_checked(spec: RunSpec, output_dir: Path, stop: StopRequest | None = None) -> dict[str, Any]:
    """run_experiment for a spec already validated (the command line's, by config.to_spec)."""
    previous = completed_record(spec, output_dir)
    if previous is not None:
        log.info("already completed, kept: %s (skip_completed=false reruns)", output_dir)
        for name in missing_files(output_dir, previous):
            log.warning("%s of this completed run is missing: %s", name, output_dir / name)
        return previous
    check_device(spec)
    output_dir.mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        log.info("another process is training this run; waiting for it to end: %s", output_dir)

    with exclusive(output_dir, on_wait=waiting):
        previous = existing_record(output_dir / RESULT_FILE, run_id(spec), spec.skip_completed)
        completed_before = previous is not None and previous.get("status") == "completed"
        if spec.skip_completed and completed_before:
            log.info("completed by the other process, kept: %s", output_dir)
            return previous
        device, lease = choose_device(spec.train.device)
        tracker = tracker_for(spec)
        try:
            return train_and_record(spec, output_dir, device, stop, completed_before, tracker)
        finally:
            tracker.call("finish", {}, "failed")  # where nothing closed the logged run before
            if lease is not None:
                lease.release()


def completed_record(spec: RunSpec, output_dir: Path) -> dict[str, Any] | None:
    """The completed record of this config in `output_dir`, where it is to be kept."""
    record = existing_record(output_dir / RESULT_FILE, run_id(spec), spec.skip_completed)
    if spec.skip_completed and record is not None and record.get("status") == "completed":
        return record
    return None


def check_device(spec: RunSpec) -> None:
    """A device this machine lacks is refused before anything is written."""
    try:
        check_available(spec.train.device, spec.train.compile.value)
    except ValueError as error:
        raise UserError(str(error)) from None


def train_and_record(
    spec: RunSpec,
    output_dir: Path,
    device: torch.device,
    stop: StopRequest | None,
    completed_before: bool,
    tracker: FailSafe,
) -> dict[str, Any]:
    """Build, train and record the run; a failure after its checks is recorded (unless an
    earlier completed record is to be kept) and raised as RunFailed."""
    result_path = output_dir / RESULT_FILE
    record = initial_record(spec, device)
    try:
        built = build_network(spec, device)
        record.update(synthetic_data=built.data.synthetic, channels_last=built.channels_last,
                      **built.sizes())  # fmt: skip
        build_state(spec, built)
        outcome = train(spec, built, output_dir, device, stop, tracker)
        record.update(completed_fields(spec, built, outcome))
    except (UserError, Preempted):
        raise
    except Exception as error:  # whatever stops a checked run: recorded with its traceback
        details = traceback.format_exc()
        record.update(status="failed", reason=failure_reason(error, device), traceback=details)
        logs = log_to_files(f"run failed:\n{details}")
        if completed_before:
            where = " and ".join(logs) or "no log file"
            raise RunFailed(
                f"run failed ({record['reason']}); the earlier completed record "
                f"{result_path} was kept; traceback in {where}"
            ) from error
        write_failed_record(result_path, record)
        where = " and ".join([str(result_path), *logs])
        raise RunFailed(f"run failed ({record['reason']}); traceback in {where}") from error
    write_final_files(output_dir, built, spec, record)
    tracker.call("finish", {key: record[key] for key in HEADLINE}, "completed")
    log.info(
        "final test accuracy %.2f%%, sparsity %.4f -> %s",
        outcome.final_test_acc, record["achieved_sparsity"], result_path,
    )  # fmt: skip
    return record


def train(
    spec: RunSpec,
    built: Built,
    output_dir: Path,
    device: torch.device,
    stop: StopRequest | None,
    tracker: FailSafe,
) -> TrainOutcome:
    """Resume from the newest intact checkpoint, or begin; then train to the last epoch on the
    step path train.compile asks for, keeping the run's files as it goes."""
    state, masks = built.state, built.masks
    book = RunBook(spec, output_dir, tracker)
    resumed = resume(state, book.checkpoints)
    state.step_report.requested = spec.train.compile.value
    path = step_path_for(spec.train.compile, state, spec.train.batch_size, spec.train.bf16, device)
    tracker.call("start", run_info(spec, output_dir, resumed))
    if tracker.logger is not None:  # a pruning event: global sparsity, each layer's density
        state.on_mask_change.append(
            lambda iteration, counts: tracker.call(
                "log_pruning", iteration, 1.0 - masks.density, masks.layer_densities(counts)
            )
        )
    if not resumed:
        state.begin(built.data, spec.train.batch_size)
    book.start(state, resumed)
    log.info(run_line(spec, total_iterations(spec)))
    try:
        return run(
            state, built.data, spec.train, [book.end_of_epoch], on_stop=book.checkpoint,
            stop=stop, path=path, on_fallback=report_fallback,
        )  # fmt: skip
    except Preempted:
        tracker.call("finish", {}, "preempted")
        raise


def report_fallback(failure: FastPathFailed) -> None:
    """One console line; the traceback goes to the run's log files and its record."""
    details = "".join(traceback.format_exception(failure.error))
    logs = log_to_files(f"{failure}; the fast path's traceback:\n{details}")
    where = f"; traceback in {' and '.join(logs)}" if logs else ""
    log.warning("%s: going on eagerly from the start of the epoch%s", failure, where)


def tracker_for(spec: RunSpec) -> FailSafe:
    """The run's tracker (`logger=`), not started yet; one that logs nothing for `none`."""
    plugin = spec.logger
    logger = None
    if plugin is not None and plugin.builder is not NoLogger:
        logger = plugin.builder(plugin.options)
    return FailSafe(logger, log.warning)


def run_info(spec: RunSpec, output_dir: Path, resumed: bool) -> RunInfo:
    """The run as a tracker sees it: a resumed run continues its logged run."""
    return RunInfo(
        run_id=run_id(spec),
        name=run_subdir(spec),
        group=group_of(spec.output_root),
        run_dir=output_dir,
        config=spec.config,
        resumed=resumed,
    )
