"""The one training loop every pruner runs in, around an explicit training state (TrainState,
in train_state.py). `train_step` does one iteration;
`run` is the epoch loop, which hands each finished epoch to small callbacks (metrics file,
checkpoints, the printed line). It knows the pruner only through its hooks and the masks only
through `apply_`. Per step it launches no host sync: running loss and accuracy stay on the
device and are read every `sync_every` steps for the progress bar and once per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from fggp_repro.data import ImageData, iterations_per_epoch, train_batches
from fggp_repro.masks import MaskSet
from fggp_repro.pruners.base import Pruner
from fggp_repro.spec import OptimSpec, TrainSpec
from fggp_repro.stopping import Preempted, StopRequest
from fggp_repro.train_state import EpochProgress, TrainState


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


def train_step(state: TrainState, images: Tensor, labels: Tensor, bf16: bool) -> Tensor:
    """One iteration: forward, backward, the pruner's hooks around the optimizer step, masking.
    Returns the minibatch's loss (summed) and correct count as one device tensor of two."""
    t = state.iteration
    loss, correct = state.forward_loss(images, labels, bf16)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.pruner.after_backward(t)
    state.update()
    state.pruner.after_step(t)
    state.iteration += 1
    if state.pruner.acts_at(t):  # listeners may sync with the device: at pruning events only
        state.mask_changed(t + 1)
    return torch.stack([loss.detach().float() * labels.shape[0], correct.float()])


EpochCallback = Callable[[TrainState, dict[str, Any]], None]


def run(
    state: TrainState,
    data: ImageData,
    train_cfg: TrainSpec,
    on_epoch_end: Sequence[EpochCallback] = (),
    on_stop: Callable[[TrainState], None] | None = None,
    stop: StopRequest | None = None,
    sync_every: int = 50,
) -> TrainOutcome:
    """Train from the state's position to the last epoch; test after the last (and every
    `eval_every`) epoch. On a stop request, `on_stop` (a checkpoint) runs and Preempted is
    raised."""
    device = data.train_x.device
    steps_per_epoch = iterations_per_epoch(
        data.train_x.shape[0], train_cfg.batch_size, train_cfg.drop_last
    )
    state.model.train()
    while state.epoch < train_cfg.epochs:
        epoch = state.epoch + 1
        progress = state.epoch_progress or EpochProgress(
            order=torch.randperm(
                data.train_x.shape[0], device=device, generator=state.data_generator
            )
        )
        if progress.sums is None:
            progress.sums = torch.zeros(2, device=device)
        state.epoch_progress = progress
        _synchronize(device)
        started = time.perf_counter() - progress.seconds
        bar = tqdm(
            total=steps_per_epoch,
            initial=progress.position,
            desc=f"epoch {epoch}/{train_cfg.epochs}",
            disable=not train_cfg.progress,
            leave=False,
            dynamic_ncols=True,
        )
        batches = train_batches(
            data, train_cfg.batch_size, state.data_generator, train_cfg.drop_last,
            order=progress.order, start=progress.position, memory_format=state.memory_format,
        )  # fmt: skip
        for images, labels in batches:
            progress.sums += train_step(state, images, labels, train_cfg.bf16)
            progress.seen += labels.shape[0]
            progress.position += 1
            bar.update()
            if progress.position % sync_every == 0 and not bar.disable:
                bar.set_postfix(_progress_fields(progress, state.masks))
            if stop is not None and stop.signum is not None:
                _synchronize(device)
                progress.seconds = time.perf_counter() - started
                bar.close()
                if on_stop is not None:
                    on_stop(state)
                raise Preempted(stop.signum)
        _synchronize(device)
        seconds = time.perf_counter() - started
        bar.set_postfix(_progress_fields(progress, state.masks))
        bar.close()
        lr = state.optimizer.param_groups[0]["lr"]
        state.lr_schedule.step()
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
        if epoch == train_cfg.epochs or (
            train_cfg.eval_every and epoch % train_cfg.eval_every == 0
        ):
            row["test_acc"] = evaluate(state.model, data, train_cfg.eval_batch_size, train_cfg.bf16)
        state.epoch, state.epoch_progress = epoch, None
        state.train_seconds += seconds
        state.images_seen += progress.seen
        state.history.append(row)
        for callback in on_epoch_end:
            callback(state, {**row, "epoch_seconds": seconds})

    return TrainOutcome(
        final_test_acc=state.history[-1]["test_acc"],
        epochs=train_cfg.epochs,
        iterations=state.iteration,
        train_seconds=state.train_seconds,
        images_per_second=state.images_seen / state.train_seconds
        if state.train_seconds > 0
        else math.nan,
    )


def train(
    model: nn.Module,
    masks: MaskSet,
    pruner: Pruner,
    data: ImageData,
    optim_cfg: OptimSpec,
    train_cfg: TrainSpec,
    seed: int,
    on_epoch_end: Sequence[EpochCallback] = (),
) -> TrainOutcome:
    """A fresh run from start to end, without checkpoints (tests, benchmarks, notebooks)."""
    state = TrainState(model, masks, pruner, optim_cfg, seed)
    state.begin(data, train_cfg.batch_size)
    return run(state, data, train_cfg, on_epoch_end)


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
