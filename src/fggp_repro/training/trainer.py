"""The one training loop every pruner runs in, around an explicit training state (TrainState,
in training/state.py) and a step path (training/steps.py: eager, compiled, or a captured CUDA
graph).
`run` is the epoch loop, which hands each finished epoch to small callbacks (metrics file,
checkpoints, the printed line). It knows the pruner only through its hooks and the masks only
through `apply_`. Per step it launches no host sync: running loss and accuracy stay on the
device and are read every `sync_every` steps for the progress bar and once per epoch.

A fast path that fails (FastPathFailed) never ends a run: the state goes back to the copy taken
at the start of the epoch, and the epoch is trained again on the eager path, so no step is
applied twice and, with deterministic kernels, the run ends as an eager run would.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from fggp_repro.foundations.spec import OptimSpec, TrainSpec
from fggp_repro.pruners.base import Pruner
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.training.data import ImageData, iterations_per_epoch, train_batches
from fggp_repro.training.state import EpochProgress, TrainState
from fggp_repro.training.steps import FastPathFailed, StepPath
from fggp_repro.training.stopping import Preempted, StopRequest

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The training loss stopped being finite."""


@dataclass
class TrainOutcome:
    final_test_acc: float
    epochs: int
    iterations: int
    train_seconds: float
    images_per_second: float


def set_determinism(deterministic: bool) -> None:
    """Set cuDNN's two switches together: benchmark=True silently defeats deterministic=True."""
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


EpochCallback = Callable[[TrainState, dict[str, Any]], None]


def run(
    state: TrainState,
    data: ImageData,
    train: TrainSpec,
    on_epoch_end: Sequence[EpochCallback] = (),
    on_stop: Callable[[TrainState], None] | None = None,
    stop: StopRequest | None = None,
    path: StepPath | None = None,
    on_fallback: Callable[[FastPathFailed], None] | None = None,
    sync_every: int = 50,
) -> TrainOutcome:
    """Train from the state's position to the last epoch on `path` (eager by default); test
    after the last (and every `eval_every`) epoch. A failure of a fast path is told to
    `on_fallback` and survived (see the module docstring). On a stop request, `on_stop` (a
    checkpoint) runs and Preempted is raised."""
    path = path or StepPath(state, train.batch_size, train.bf16)
    state.step_report.start(path.name)
    state.model.train()
    while state.epoch < train.epochs:
        started = time.perf_counter()
        intact = state.snapshot() if path.can_fail else None
        try:
            progress, seconds = train_epoch(state, data, train, path, on_stop, stop, sync_every)
        except FastPathFailed as failure:
            assert intact is not None
            path = fall_back(state, intact, failure, train)
            state.wall_seconds += time.perf_counter() - started
            (on_fallback or _warn)(failure)
            continue
        end_epoch(state, data, train, progress, seconds, started, on_epoch_end)
    return TrainOutcome(
        final_test_acc=state.history[-1]["test_acc"],
        epochs=train.epochs,
        iterations=state.iteration,
        train_seconds=state.train_seconds,
        images_per_second=state.images_seen / state.train_seconds
        if state.train_seconds > 0
        else math.nan,
    )


def fall_back(
    state: TrainState, intact: dict[str, Any], failure: FastPathFailed, train: TrainSpec
) -> StepPath:
    """The state as it was when the epoch began, the failure in its report, and the eager
    path to go on with. Whatever the failed path queued on the device ends first."""
    _synchronize(state.device)
    state.restore(intact)
    eager = StepPath(state, train.batch_size, train.bf16)
    state.step_report.fallbacks.append({
        "from": failure.path, "to": eager.name, "at_iteration": failure.iteration,
        "resumed_at_iteration": state.iteration, "reason": str(failure),
        "traceback": "".join(traceback.format_exception(failure.error)),
    })  # fmt: skip
    state.step_report.start(eager.name)
    return eager


def _warn(failure: FastPathFailed) -> None:
    log.warning("%s; going on eagerly from the start of the epoch", failure)


def train_epoch(
    state: TrainState,
    data: ImageData,
    train: TrainSpec,
    path: StepPath,
    on_stop: Callable[[TrainState], None] | None,
    stop: StopRequest | None,
    sync_every: int,
) -> tuple[EpochProgress, float]:
    """The steps of one epoch (or of its rest, after a resume); its progress and step time."""
    device = data.train_x.device
    steps_per_epoch = iterations_per_epoch(data.train_x.shape[0], train.batch_size, train.drop_last)
    progress = state.epoch_progress or EpochProgress(
        order=torch.randperm(data.train_x.shape[0], device=device, generator=state.data_generator)
    )
    if progress.sums is None:
        progress.sums = torch.zeros(2, device=device)
    state.epoch_progress = progress
    _synchronize(device)
    started = time.perf_counter() - progress.seconds
    bar = tqdm(
        total=steps_per_epoch,
        initial=progress.position,
        desc=f"epoch {state.epoch + 1}/{train.epochs}",
        disable=not train.progress,
        leave=False,
        dynamic_ncols=True,
    )
    batches = train_batches(
        data, train.batch_size, state.data_generator, train.drop_last,
        order=progress.order, start=progress.position, memory_format=state.memory_format,
    )  # fmt: skip
    try:
        for images, labels in batches:
            progress.sums += path.step(images, labels)
            progress.seen += labels.shape[0]
            progress.position += 1
            bar.update()
            if progress.position % sync_every == 0 and not bar.disable:
                bar.set_postfix(_progress_fields(progress, state.masks))
            if stop is not None and stop.signum is not None:
                _synchronize(device)
                progress.seconds = time.perf_counter() - started
                if on_stop is not None:
                    on_stop(state)
                raise Preempted(stop.signum)
        _synchronize(device)
        bar.set_postfix(_progress_fields(progress, state.masks))
    finally:
        bar.close()
    return progress, time.perf_counter() - started


def end_epoch(
    state: TrainState,
    data: ImageData,
    train: TrainSpec,
    progress: EpochProgress,
    seconds: float,
    started: float,
    on_epoch_end: Sequence[EpochCallback],
) -> None:
    """The LR step, the epoch's row (tested where due) in the history, then the callbacks."""
    epoch = state.epoch + 1
    lr = state.optimizer.param_groups[0]["lr"]
    state.lr_schedule.step()
    assert progress.sums is not None
    loss_sum, correct = progress.sums.tolist()
    train_loss = loss_sum / progress.seen
    if not math.isfinite(train_loss):
        raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch}")
    row: dict[str, Any] = {
        "epoch": epoch,
        "iteration": state.iteration,
        "lr": lr,
        "train_loss": train_loss,
        "train_acc": 100.0 * correct / progress.seen,
        "density": state.masks.density,
        "sparsity": 1.0 - state.masks.density,
    }
    if epoch == train.epochs or (train.eval_every and epoch % train.eval_every == 0):
        row["test_acc"] = evaluate(state.model, data, train.eval_batch_size, train.bf16)
    state.epoch, state.epoch_progress = epoch, None
    state.train_seconds += seconds
    state.images_seen += progress.seen
    state.history.append(row)
    state.wall_seconds += time.perf_counter() - started  # what a checkpoint now written holds
    callbacks_started = time.perf_counter()
    for callback in on_epoch_end:
        callback(state, {**row, "epoch_seconds": seconds})
    state.wall_seconds += time.perf_counter() - callbacks_started


def train(
    model: nn.Module,
    masks: MaskSet,
    pruner: Pruner,
    data: ImageData,
    optim: OptimSpec,
    train: TrainSpec,
    seed: int,
    on_epoch_end: Sequence[EpochCallback] = (),
) -> TrainOutcome:
    """A fresh run from start to end, without checkpoints (tests, benchmarks, notebooks)."""
    state = TrainState(model, masks, pruner, optim, seed)
    state.begin(data, train.batch_size)
    return run(state, data, train, on_epoch_end)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, batch_size: int, bf16: bool = False) -> float:
    """Top-1 accuracy on the test split, in percent."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=data.test_x.device)
    device_type = data.test_x.device.type
    for begin in range(0, data.test_x.shape[0], batch_size):
        images = data.normalize(data.test_x[begin : begin + batch_size])
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        correct += (logits.argmax(1) == data.test_y[begin : begin + batch_size]).sum()
    model.train(was_training)
    return 100.0 * correct.item() / data.test_x.shape[0]


def epoch_line(row: dict[str, Any]) -> str:
    line = (
        f"epoch {row['epoch']:>3}  loss {row['train_loss']:.4f}  train acc {row['train_acc']:5.2f}"
        f"  sparsity {row['sparsity']:.4f}  lr {row['lr']:.4g}"
    )
    return line + (f"  test acc {row['test_acc']:5.2f}" if "test_acc" in row else "")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress_fields(progress: EpochProgress, masks: MaskSet) -> dict[str, str]:
    assert progress.sums is not None
    loss_sum, correct = progress.sums.tolist()
    seen = max(progress.seen, 1)
    return {
        "loss": f"{loss_sum / seen:.3f}",
        "acc": f"{100.0 * correct / seen:.1f}",
        "sparsity": f"{1.0 - masks.density:.4f}",
    }
