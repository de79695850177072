"""What a run's record says, and the files a finished or failed run leaves: the record's fields
before training and after it, the reason and traceback of a failure, the final weights and
metrics. A record never describes files of another run."""

from __future__ import annotations

import errno
import json
import logging
import math
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from fggp_repro.foundations.errors import first_line
from fggp_repro.foundations.files import write_atomic, write_json_atomic
from fggp_repro.foundations.spec import RunSpec
from fggp_repro.runs.build import Built
from fggp_repro.runs.identity import run_id, setting_id
from fggp_repro.runs.records import (
    CHECKPOINT_DIRECTORY,
    METRICS_FILE,
    MODEL_FILE,
    RESULT_FILE,
    environment,
)
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.training.checkpoints import to_bytes
from fggp_repro.training.flops import layer_forward_flops, network_flops, training_flops
from fggp_repro.training.state import TrainState
from fggp_repro.training.trainer import TrainOutcome

log = logging.getLogger(__name__)

RUNNING_METRICS_FILE = "metrics.running.jsonl"  # renamed to METRICS_FILE when the run completes


def reported_axes(spec: RunSpec) -> tuple[float, str]:
    """The target sparsity and initial state as a run reports them: 0.0 and "n/a" for a method
    with no use for them (dense training; a method that sets its own starting mask)."""
    traits = spec.pruner.builder.traits
    target = spec.sparsity if traits.uses_target else 0.0
    return target, spec.init.value if traits.uses_initial_state else "n/a"


def initial_record(spec: RunSpec, device: torch.device) -> dict[str, Any]:
    """What a record knows before anything is built; the network's sizes come once it is."""
    target, init = reported_axes(spec)
    return {
        "status": "running",
        "run_id": run_id(spec),
        "setting_id": setting_id(spec),
        "backbone": spec.backbone.name,
        "pruner": spec.pruner.name,
        "reference": not spec.pruner.builder.traits.uses_target,
        "target_sparsity": target,
        "init": init,
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


def run_line(spec: RunSpec, iterations: int) -> str:
    """The line a run's log starts with: what is trained, to what, on what, which run."""
    target, init = reported_axes(spec)
    return (
        f"training {spec.backbone.name} / {spec.pruner.name} to sparsity {target} from {init} "
        f"on {spec.data.name} ({iterations} iterations, run {run_id(spec)})"
    )


def completed_fields(spec: RunSpec, built: Built, outcome: TrainOutcome) -> dict[str, Any]:
    """What a completed run adds to its record: accuracy, sparsities, layers, FLOPs, speed and
    costs, and GraNet's best-after-pruning figure where the protocol asks for it."""
    masks, state = built.masks, built.state
    fields = {
        **flops_fields(built, spec),
        "status": "completed",
        "final_test_acc": outcome.final_test_acc,
        **achieved_sparsities(masks, conv_linear=built.sizes()["params_conv_linear"]),
        "per_layer": masks.layer_stats(),
        "sparsity_history": sparsity_history(state.mask_history.events, masks.numel),
        "epochs": outcome.epochs,
        "iterations": outcome.iterations,
        "train_seconds": outcome.train_seconds,
        "images_per_second": outcome.images_per_second,
        **costs(state),
    }
    if spec.protocol.best_test_after_pruning:
        fields.update(
            best_after_pruning(state.history, spec.schedule.end_fraction, spec.train.epochs)
        )
    return fields


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


def flops_fields(built: Built, spec: RunSpec) -> dict[str, float]:
    """Inference FLOPs of the final network and training FLOPs of the run, absolute (per image
    of the data's shape, for inference) and as a fraction of dense training (training.flops)."""
    masks, state = built.masks, built.state
    dense = layer_forward_flops(built.model, (1, *built.data.image_shape))
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


def write_final_files(output_dir: Path, built: Built, spec: RunSpec, record: dict) -> None:
    """model.pt (where checkpoint.save_model), metrics.jsonl, then result.json, the checkpoints
    gone. The earlier record goes first: it never outlives the files it described."""
    result_path = output_dir / RESULT_FILE
    result_path.unlink(missing_ok=True)
    if spec.checkpoint.save_model:
        final = {
            "model": built.model.state_dict(),
            "mask_names": built.masks.names,
            "masks": built.masks.state_dict(),
        }
        write_atomic(output_dir / MODEL_FILE, [to_bytes(final)])
    else:
        (output_dir / MODEL_FILE).unlink(missing_ok=True)
    (output_dir / RUNNING_METRICS_FILE).replace(output_dir / METRICS_FILE)
    write_json_atomic(result_path, record)
    shutil.rmtree(output_dir / CHECKPOINT_DIRECTORY, ignore_errors=True)


def failure_reason(error: BaseException, device: torch.device | str) -> str:
    """The reason a failed record gives, with what to do for resource failures."""
    text = first_line(error)
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


def write_failed_record(path: Path, record: dict[str, Any]) -> None:
    try:
        write_json_atomic(path, record)
    except OSError as error:
        log.error("could not write the failed record %s: %s", path, error)


def jsonl(rows: Iterable[dict[str, Any]]) -> Iterable[bytes]:
    """Rows as JSON lines, as metrics.jsonl holds them."""
    return (json.dumps(row).encode() + b"\n" for row in rows)
