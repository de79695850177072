"""One experiment: a RunSpec in, a trained network and a result.json out. No Hydra in here, so
it runs the same from the command line, a sweep launcher, a SLURM job or a notebook."""

from __future__ import annotations

import errno
import json
import logging
import math
import shutil
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from fggp_repro.checkpoint import load_latest, save_checkpoint, to_bytes
from fggp_repro.checks import total_iterations, validate
from fggp_repro.data import load_data
from fggp_repro.devices import check_available, choose_device
from fggp_repro.errors import ConfigError, UserError
from fggp_repro.flops import layer_forward_flops, network_flops, training_flops
from fggp_repro.identity import run_id, run_subdir, setting_id
from fggp_repro.loggers.base import HEADLINE, FailSafe, NoLogger, RunInfo, group_of
from fggp_repro.masks import MaskSet, conv_linear_parameter_count
from fggp_repro.models import build_backbone
from fggp_repro.pruners import build_pruner
from fggp_repro.records import (
    CHECKPOINT_DIRECTORY,
    METRICS_FILE,
    MODEL_FILE,
    RESULT_FILE,
    environment,
    exclusive,
    existing_record,
    missing_files,
    write_atomic,
    write_json_atomic,
)  # fmt: skip
from fggp_repro.spec import INITIAL_DENSITY, RunSpec
from fggp_repro.steps import FastPathFailed, step_path_for
from fggp_repro.stopping import Preempted, StopRequest
from fggp_repro.train_state import TrainState
from fggp_repro.trainer import TrainOutcome, epoch_line, run, set_determinism

log = logging.getLogger(__name__)

RUNNING_METRICS_FILE = "metrics.running.jsonl"  # renamed to METRICS_FILE when the run completes


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
    result_path = output_dir / RESULT_FILE
    previous = existing_record(result_path, run_id(spec), spec.skip_completed)
    if spec.skip_completed and previous is not None and previous.get("status") == "completed":
        log.info("already completed, kept: %s (skip_completed=false reruns)", result_path)
        for name in missing_files(output_dir, previous):
            log.warning("%s of this completed run is missing: %s", name, output_dir / name)
        return previous
    check_device(spec)
    output_dir.mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        log.info("another process is training this run; waiting for it to end: %s", output_dir)

    with exclusive(output_dir, on_wait=waiting):
        previous = existing_record(result_path, run_id(spec), spec.skip_completed)
        completed_before = previous is not None and previous.get("status") == "completed"
        if spec.skip_completed and completed_before:
            log.info("completed by the other process, kept: %s", result_path)
            return previous
        device, lease = choose_device(spec.train.device)
        tracker = tracker_for(spec)
        try:
            return _train(spec, output_dir, device, stop, completed_before, tracker)
        finally:
            tracker.call("finish", {}, "failed")  # where nothing closed the logged run before
            if lease is not None:
                lease.release()


def check_device(spec: RunSpec) -> None:
    """A device this machine lacks is refused before anything is written."""
    try:
        check_available(spec.train.device, spec.train.compile.value)
    except ValueError as error:
        raise UserError(str(error)) from None


def _train(
    spec: RunSpec,
    output_dir: Path,
    device: torch.device,
    stop: StopRequest | None,
    completed_before: bool,
    tracker: FailSafe,
) -> dict[str, Any]:
    result_path = output_dir / RESULT_FILE
    record = _spec_record(spec, device)
    try:
        model, masks, outcome = _build_and_train(spec, output_dir, device, stop, tracker, record)
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
        _write_failed_record(result_path, record)
        where = " and ".join([str(result_path), *logs])
        raise RunFailed(f"run failed ({record['reason']}); traceback in {where}") from error

    # a record never describes files of another run: the earlier record goes before its files
    result_path.unlink(missing_ok=True)
    if spec.checkpoint.save_model:
        final = {
            "model": model.state_dict(),
            "mask_names": masks.names,
            "masks": masks.state_dict(),
        }
        write_atomic(output_dir / MODEL_FILE, [to_bytes(final)])
    else:
        (output_dir / MODEL_FILE).unlink(missing_ok=True)
    (output_dir / RUNNING_METRICS_FILE).replace(output_dir / METRICS_FILE)
    write_json_atomic(result_path, record)
    shutil.rmtree(output_dir / CHECKPOINT_DIRECTORY, ignore_errors=True)
    tracker.call("finish", {key: record[key] for key in HEADLINE}, "completed")
    log.info(
        "final test accuracy %.2f%%, sparsity %.4f -> %s",
        outcome.final_test_acc, record["achieved_sparsity"], result_path,
    )  # fmt: skip
    return record


def _build_and_train(
    spec: RunSpec,
    output_dir: Path,
    device: torch.device,
    stop: StopRequest | None,
    tracker: FailSafe,
    record: dict[str, Any],
) -> tuple[torch.nn.Module, MaskSet, TrainOutcome]:
    """Data, network, masks and pruner from the spec, resumed or begun, trained to the end;
    `record` is filled in on the way, so a failure at any point leaves what was known."""
    if device.type == "cuda":
        torch.cuda.set_device(device)  # the leased GPU is where every default allocation goes
    torch.manual_seed(spec.seed)
    set_determinism(spec.train.deterministic)
    data = load_data(spec.data).to(device)
    model = build_backbone(spec.backbone, data.num_classes, data.image_shape[0]).to(device)
    channels_last = spec.train.channels_last
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    masks = MaskSet.from_model(
        model, spec.masking.keep_first_conv_dense, spec.masking.density_base.value
    )
    if spec.pruner.builder.traits.uses_target:
        check_reachable(masks, 1.0 - spec.sparsity, spec.masking.density_base)
    record.update(
        synthetic_data=data.synthetic,
        params_total=sum(p.numel() for p in model.parameters()),
        params_prunable=masks.numel,
        params_conv_linear=conv_linear_parameter_count(model),
    )
    pruner = build_pruner(
        spec.pruner,
        masks,
        target_density=1.0 - spec.sparsity,
        total_iterations=total_iterations(spec),
        initial_density=INITIAL_DENSITY[spec.init],
        seed=spec.seed,
        schedule=spec.schedule,
    )
    state = TrainState(model, masks, pruner, spec.optim, spec.seed)
    if channels_last:
        state.memory_format = torch.channels_last
    record.update(channels_last=channels_last)
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = output_dir / CHECKPOINT_DIRECTORY
    running_metrics = output_dir / RUNNING_METRICS_FILE
    resumed = resume(state, checkpoint_dir)
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
        state.begin(data, spec.train.batch_size)
        running_metrics.unlink(missing_ok=True)
    else:  # the metrics of the epochs the checkpoint holds, no more and no fewer
        write_atomic(running_metrics, _jsonl(state.history))
    log.info(
        "training %s / %s to sparsity %s from %s on %s (%d iterations, run %s)",
        spec.backbone.name, spec.pruner.name, record["target_sparsity"], record["init"],
        record["dataset"], total_iterations(spec), record["run_id"],
    )  # fmt: skip

    last_checkpoint = time.monotonic()

    def checkpoint(state: TrainState) -> None:
        nonlocal last_checkpoint
        started = time.perf_counter()
        save_checkpoint(
            checkpoint_dir, state.state_dict(), state.iteration, max(spec.checkpoint.keep, 1)
        )
        state.checkpoint_seconds += time.perf_counter() - started
        last_checkpoint = time.monotonic()

    def end_of_epoch(state: TrainState, row: dict[str, Any]) -> None:
        if checkpoint_due(spec, state.epoch, time.monotonic() - last_checkpoint):
            checkpoint(state)
        with running_metrics.open("a") as handle:
            handle.write(next(iter(_jsonl([state.history[-1]]))).decode())
        if spec.train.progress:
            tqdm.write(epoch_line(row))
        tracker.call("log_epoch", state.iteration, row)

    try:
        outcome = run(
            state, data, spec.train, [end_of_epoch], on_stop=checkpoint, stop=stop, path=path,
            on_fallback=report_fallback,
        )  # fmt: skip
    except Preempted:
        tracker.call("finish", {}, "preempted")
        raise
    record.update(flops_record(model, masks, state, spec, data.image_shape))
    record.update(
        status="completed",
        final_test_acc=outcome.final_test_acc,
        **achieved_sparsities(masks, record["params_conv_linear"]),
        per_layer=masks.layer_stats(),
        sparsity_history=sparsity_history(state.mask_history.events, masks.numel),
        epochs=outcome.epochs,
        iterations=outcome.iterations,
        train_seconds=outcome.train_seconds,
        images_per_second=outcome.images_per_second,
        **costs(state),
    )
    if spec.protocol.best_test_after_pruning:
        record.update(
            best_after_pruning(state.history, spec.schedule.end_fraction, spec.train.epochs)
        )
    return model, masks, outcome


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


def report_fallback(failure: FastPathFailed) -> None:
    """One console line; the traceback goes to the run's log files and its record."""
    details = "".join(traceback.format_exception(failure.error))
    logs = log_to_files(f"{failure}; the fast path's traceback:\n{details}")
    where = f"; traceback in {' and '.join(logs)}" if logs else ""
    log.warning("%s: going on eagerly from the start of the epoch%s", failure, where)


def costs(state: TrainState) -> dict[str, Any]:
    """What the run cost beyond its training steps, and which step path ran its steps."""
    report = state.step_report
    return {
        "step_path": "→".join(report.used),
        "step_path_details": {
            "requested": report.requested,
            "used": report.used,
            "steps": report.steps,
            "captures": report.captures,
            "compilations": report.compilations,
            "setup_seconds": report.setup_seconds,
            "fallbacks": report.fallbacks,
        },
        "wall_seconds": state.wall_seconds,
        "wall_seconds_per_epoch": state.wall_seconds / max(state.epoch, 1),
        "checkpoint_seconds": state.checkpoint_seconds,
    }


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


def best_after_pruning(
    history: list[dict[str, Any]], end_fraction: float, epochs: int
) -> dict[str, Any]:
    """GraNet's headline figure: the best test accuracy over the epochs after the pruning window
    (GraNet resets its best at epoch final_prune_epoch + 1). It is selected on test, so the record
    says so and keeps it apart from the final-epoch accuracy."""
    first = math.floor(end_fraction * epochs) + 1
    tested = [row["test_acc"] for row in history if row["epoch"] >= first and "test_acc" in row]
    return {
        "best_test_acc_after_pruning": max(tested) if tested else None,
        "best_test_acc_after_pruning_epochs": [first, epochs],
        "selected_on_test": ["best_test_acc_after_pruning"],
    }


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


def failure_reason(error: BaseException, device: torch.device) -> str:
    """The reason a failed record gives, with what to do for resource failures."""
    text = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return (
            f"out of memory on {device} ({type(error).__name__}); lower train.batch_size or "
            "run fewer jobs per device"
        )
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"disk full ({error.filename or text}); free space and rerun to resume"
    return f"{type(error).__name__}: {text}"


def log_to_files(text: str) -> list[str]:
    """Write `text` (a traceback) to the log files the logging setup has (Hydra's run log), not
    to the console, which keeps its one line; return their paths."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    entry = log.makeRecord(log.name, logging.ERROR, __file__, 0, text, None, None)
    for handler in files:
        handler.handle(entry)
    return [handler.baseFilename for handler in files]


def _write_failed_record(path: Path, record: dict[str, Any]) -> None:
    try:
        write_json_atomic(path, record)
    except OSError as error:
        log.error("could not write the failed record %s: %s", path, error)


def check_reachable(masks: MaskSet, final_density: float, density_base: str) -> None:
    """A target whose count over the density base leaves no prunable weight is refused."""
    try:
        masks.target_active(final_density)
    except ValueError as error:
        raise ConfigError(
            f"masking.density_base={density_base}: {error}; lower the sparsity or use "
            "masking.density_base=prunable"
        ) from None


def sparsity_history(events: list[tuple[int, list[int]]], prunable: int) -> list[tuple[int, float]]:
    """(iteration, sparsity over the prunable weights) from the start and after every mask
    change: the figures draw the sparsity a run had at every step, not only at epoch ends."""
    return [(iteration, round(1.0 - sum(counts) / prunable, 6)) for iteration, counts in events]


def achieved_sparsities(masks: MaskSet, conv_linear: int) -> dict[str, float]:
    """Sparsity over the prunable weights, and over every Conv2d/Linear parameter (biases and a
    dense first conv count as active), counted from the masks."""
    active_conv_linear = masks.active_count + conv_linear - masks.numel
    return {
        "achieved_sparsity": 1.0 - masks.active_count / masks.numel,
        "achieved_sparsity_conv_linear": 1.0 - active_conv_linear / conv_linear,
    }


def flops_record(
    model: torch.nn.Module,
    masks: MaskSet,
    state: TrainState,
    spec: RunSpec,
    image_shape: tuple[int, int, int],
) -> dict[str, float]:
    """Inference FLOPs of the final network and training FLOPs of the run, absolute (per image
    of the data's shape, for inference) and as a fraction of dense training (fggp_repro.flops)."""
    dense = layer_forward_flops(model, (1, *image_shape))
    layer_of = {name: name.removesuffix(".weight") for name in masks.names}

    def densities(counts: list[int]) -> dict[str, float]:
        return {
            layer_of[name]: active / size
            for name, active, size in zip(masks.names, counts, masks.sizes, strict=True)
        }

    events = [(t, densities(counts)) for t, counts in state.mask_history.events]
    images = state.images_seen
    full = sum(dense.values())
    final = network_flops(dense, densities(masks.layer_active_counts()))
    training = training_flops(
        dense, events, state.iteration, images, spec.pruner.builder.traits.reads_dense_gradient,
        [t - 1 for t, _ in events[1:]],
    )  # fmt: skip
    return {
        "inference_flops": final,
        "inference_flops_fraction": final / full,
        "training_flops": training,
        "training_flops_fraction": training / (3 * full * images),
    }


def _jsonl(rows: Iterable[dict[str, Any]]) -> Iterable[bytes]:
    return (json.dumps(row).encode() + b"\n" for row in rows)


def _spec_record(spec: RunSpec, device: torch.device) -> dict[str, Any]:
    """What a record knows before anything is built; the network's sizes come once it is."""
    traits = spec.pruner.builder.traits
    return {
        "status": "running",
        "run_id": run_id(spec),
        "setting_id": setting_id(spec),
        "backbone": spec.backbone.name,
        "pruner": spec.pruner.name,
        "reference": not traits.uses_target,
        "target_sparsity": spec.sparsity if traits.uses_target else 0.0,
        "init": spec.init.value if traits.uses_initial_state else "n/a",
        "seed": spec.seed,
        "dataset": spec.data.name,
        "synthetic_data": None,
        "protocol": spec.protocol.name,
        "final_test_acc": None,
        "achieved_sparsity": None,
        "achieved_sparsity_conv_linear": None,
        "per_layer": None,
        "params_total": None,
        "params_prunable": None,
        "params_conv_linear": None,
        "density_base": spec.masking.density_base.value,
        "epochs": spec.train.epochs,
        "train_seconds": None,
        "images_per_second": None,
        **environment(device),
        "config": spec.config,
    }
