"""The one training loop every pruner runs in.

It knows the pruner only through its three hooks and the masks only through `apply_`. Per step it
launches no host sync: running loss and accuracy stay on the device and are read every
`sync_every` steps for the progress bar and once per epoch for the metrics file.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from fggp_repro.data import ImageData, iterations_per_epoch, normalize, train_batches
from fggp_repro.masks import MaskSet
from fggp_repro.pruners.base import Pruner


class TrainingDiverged(RuntimeError):
    """The training loss stopped being finite."""


@dataclass
class TrainOutcome:
    final_test_acc: float
    epochs: int
    iterations: int
    train_seconds: float
    images_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_determinism(deterministic: bool) -> None:
    """Set cuDNN's two switches together: benchmark=True silently defeats deterministic=True."""
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, batch_size: int, bf16: bool = False) -> float:
    """Top-1 accuracy on the test split, in percent."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=data.test_x.device)
    device_type = data.test_x.device.type
    for begin in range(0, data.test_x.shape[0], batch_size):
        images = normalize(data.test_x[begin : begin + batch_size], data.mean, data.std)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        correct += (logits.argmax(1) == data.test_y[begin : begin + batch_size]).sum()
    model.train(was_training)
    return 100.0 * correct.item() / data.test_x.shape[0]


def make_optimizer(model: nn.Module, optim_cfg: Any) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(),
        lr=optim_cfg.lr,
        momentum=optim_cfg.momentum,
        nesterov=optim_cfg.nesterov,
        weight_decay=optim_cfg.weight_decay,
    )


def train(
    model: nn.Module,
    masks: MaskSet,
    pruner: Pruner,
    data: ImageData,
    optim_cfg: Any,
    train_cfg: Any,
    seed: int,
    metrics_path: Path | None = None,
    sync_every: int = 50,
) -> TrainOutcome:
    """Train with SGD + MultiStepLR, calling the pruner's hooks, and test at the end."""
    device = data.train_x.device
    optimizer = make_optimizer(model, optim_cfg)
    lr_schedule = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(optim_cfg.milestones), gamma=optim_cfg.gamma
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=optim_cfg.label_smoothing)
    generator = torch.Generator(device=device).manual_seed(seed)
    steps_per_epoch = iterations_per_epoch(
        data.train_x.shape[0], train_cfg.batch_size, train_cfg.drop_last
    )
    init_generator = torch.Generator(device=device).manual_seed(seed + 1)
    pruner.at_init(model, train_batches(data, train_cfg.batch_size, init_generator))
    masks.apply_(optimizer)

    history: list[dict[str, Any]] = []
    iteration, images_seen, train_seconds = 0, 0, 0.0
    test_acc = math.nan
    model.train()
    for epoch in range(1, train_cfg.epochs + 1):
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        _synchronize(device)
        started = time.perf_counter()
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch}/{train_cfg.epochs}",
            disable=not train_cfg.progress,
            leave=False,
            dynamic_ncols=True,
        )
        for images, labels in train_batches(
            data, train_cfg.batch_size, generator, train_cfg.drop_last
        ):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=train_cfg.bf16):
                logits = model(images)
                loss = criterion(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            pruner.after_backward(iteration)
            optimizer.step()
            masks.apply_(optimizer)
            pruner.after_step(iteration)

            loss_sum += loss.detach() * labels.shape[0]
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += labels.shape[0]
            iteration += 1
            bar.update()
            if iteration % sync_every == 0 and not bar.disable:
                bar.set_postfix(_progress_fields(loss_sum, correct, seen, masks))
        _synchronize(device)
        train_seconds += time.perf_counter() - started
        images_seen += seen
        bar.set_postfix(_progress_fields(loss_sum, correct, seen, masks))
        bar.close()
        lr = optimizer.param_groups[0]["lr"]
        lr_schedule.step()

        train_loss = loss_sum.item() / seen
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch}")
        row: dict[str, Any] = {
            "epoch": epoch,
            "iteration": iteration,
            "lr": lr,
            "train_loss": train_loss,
            "train_acc": 100.0 * correct.item() / seen,
            "density": masks.density,
            "sparsity": 1.0 - masks.density,
            "epoch_seconds": time.perf_counter() - started,
        }
        last = epoch == train_cfg.epochs
        if last or (train_cfg.eval_every and epoch % train_cfg.eval_every == 0):
            test_acc = evaluate(model, data, train_cfg.eval_batch_size, train_cfg.bf16)
            row["test_acc"] = test_acc
        history.append(row)
        if metrics_path is not None:
            with metrics_path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
        if train_cfg.progress:
            tqdm.write(_epoch_line(row))

    return TrainOutcome(
        final_test_acc=test_acc,
        epochs=train_cfg.epochs,
        iterations=iteration,
        train_seconds=train_seconds,
        images_per_second=images_seen / train_seconds if train_seconds > 0 else math.nan,
        history=history,
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress_fields(loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, masks: MaskSet):
    return {
        "loss": f"{loss_sum.item() / max(seen, 1):.3f}",
        "acc": f"{100.0 * correct.item() / max(seen, 1):.1f}",
        "sparsity": f"{1.0 - masks.density:.4f}",
    }


def _epoch_line(row: dict[str, Any]) -> str:
    line = (
        f"epoch {row['epoch']:>3}  loss {row['train_loss']:.4f}  train acc {row['train_acc']:5.2f}"
        f"  sparsity {row['sparsity']:.4f}  lr {row['lr']:.4g}"
    )
    return line + (f"  test acc {row['test_acc']:5.2f}" if "test_acc" in row else "")
