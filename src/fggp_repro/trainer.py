"""The one training loop every pruner runs in, around an explicit training state.

`TrainState` holds everything a run needs to continue bit for bit after a kill: model, optimizer,
LR schedule, masks, the pruner's state, the counters, every random generator and, when it was
stopped mid-epoch, that epoch's data order and running sums. `train_step` does one iteration;
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
from fggp_repro.flops import MaskHistory
from fggp_repro.masks import MaskSet
from fggp_repro.pruners.base import Pruner
from fggp_repro.spec import OptimSpec, TrainSpec
from fggp_repro.stopping import Preempted, StopRequest


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


def make_optimizer(model: nn.Module, optim_cfg: OptimSpec) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(),
        lr=optim_cfg.lr,
        momentum=optim_cfg.momentum,
        nesterov=optim_cfg.nesterov,
        weight_decay=optim_cfg.weight_decay,
        foreach=True,  # one kernel per operation over all parameters, not one per parameter
    )


@dataclass
class EpochProgress:
    """An epoch stopped part-way: its data order, how many batches are done, and the running
    sums of loss and correct predictions (one device tensor of two)."""

    order: Tensor
    position: int = 0
    sums: Tensor | None = None
    seen: int = 0
    seconds: float = 0.0


class TrainState:
    """Model, optimizer, LR schedule, masks, pruner, counters and generators of one run."""

    def __init__(
        self, model: nn.Module, masks: MaskSet, pruner: Pruner, optim_cfg: OptimSpec, seed: int
    ):
        device = next(model.parameters()).device
        self.model, self.masks, self.pruner = model, masks, pruner
        self.optimizer = make_optimizer(model, optim_cfg)
        self.lr_schedule = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(optim_cfg.milestones), gamma=optim_cfg.gamma
        )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=optim_cfg.label_smoothing)
        self.data_generator = torch.Generator(device=device).manual_seed(seed)
        self.init_generator = torch.Generator(device=device).manual_seed(seed + 1)
        self.epoch = 0  # completed epochs
        self.iteration = 0  # completed steps
        self.train_seconds = 0.0
        self.images_seen = 0
        self.history: list[dict[str, Any]] = []
        self.epoch_progress: EpochProgress | None = None
        self.mask_history = MaskHistory()
        #: told (iteration, masks) at the start and after each step at which the pruner may
        #: have changed the mask: the FLOPs history, and whatever else wants to follow it
        self.on_mask_change: list[Callable[[int, MaskSet], None]] = [self.mask_history.record]
        self.memory_format = torch.contiguous_format
        self.forward_loss = self._forward_loss
        self.update = self._update

    def _forward_loss(self, images: Tensor, labels: Tensor, bf16: bool) -> tuple[Tensor, Tensor]:
        """Forward pass, loss, and the number of correct predictions."""
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = self.model(images)
            loss = self.criterion(logits, labels)
        return loss, (logits.detach().argmax(1) == labels).sum()

    def _update(self) -> None:
        """Optimizer step, then masked weights and their momentum back to zero."""
        self.optimizer.step()
        self.masks.apply_(self.optimizer)

    def compile(self, mode: str, backend: str = "inductor") -> None:
        """Compile the two halves of a step with torch.compile (`mode` "reduce-overhead" adds
        CUDA graphs). The pruner's hooks run in Python between them, so a pruning event needs
        no special step; masks change in place, so it needs no recompilation either (tested)."""

        def update() -> None:
            self.optimizer.step()
            self.masks.apply_(self.optimizer, skip_when_dense=False)

        options = {} if mode == "default" else {"mode": mode}
        self.forward_loss = _eager_where_compiling_fails(
            torch.compile(self._forward_loss, backend=backend, **options)
        )
        self.update = _eager_where_compiling_fails(
            torch.compile(update, backend=backend, **options)
        )

    def begin(self, data: ImageData, batch_size: int) -> None:
        """A fresh run's start: the pruner's initial mask (scoring batches for SNIP-like
        methods), applied to the weights. A resumed run skips this."""
        self.pruner.at_init(self.model, train_batches(data, batch_size, self.init_generator))
        self.masks.apply_(self.optimizer)
        self.mask_changed(0)

    def mask_changed(self, iteration: int) -> None:
        """The mask may have changed before `iteration`: tell the listeners."""
        for listener in self.on_mask_change:
            listener(iteration, self.masks)

    def state_dict(self) -> dict[str, Any]:
        progress = self.epoch_progress
        return {
            "device_type": self.data_generator.device.type,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "masks": self.masks.state_dict(),
            "pruner": self.pruner.state_dict(),
            "data_generator": self.data_generator.get_state(),
            "init_generator": self.init_generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "epoch": self.epoch,
            "iteration": self.iteration,
            "train_seconds": self.train_seconds,
            "images_seen": self.images_seen,
            "history": self.history,
            "mask_events": self.mask_history.state_dict(),
            "epoch_progress": None if progress is None else vars(progress),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["device_type"] != self.data_generator.device.type:
            raise ValueError(
                f"it was written on {state['device_type']}, and this run is on "
                f"{self.data_generator.device.type}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        self.masks.load_state_dict(state["masks"])
        self.pruner.load_state_dict(state["pruner"])
        self.data_generator.set_state(state["data_generator"])
        self.init_generator.set_state(state["init_generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.iteration = state["epoch"], state["iteration"]
        self.train_seconds, self.images_seen = state["train_seconds"], state["images_seen"]
        self.history = list(state["history"])
        self.mask_history.load_state_dict(state["mask_events"])
        progress = state["epoch_progress"]
        self.epoch_progress = None if progress is None else EpochProgress(**progress)


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


def _eager_where_compiling_fails(compiled: Callable[..., Any]) -> Callable[..., Any]:
    """`compiled`, whose first call (when torch.compile compiles) runs with dynamo's
    suppress_errors: a frame that fails to compile then runs eagerly *instead*, before any of
    it ran, and frames after a graph break compile (or fall back) on their own. So no part of
    a step runs twice, as it would if a failed compiled step were retried eagerly: the
    optimizer would step twice. Failures after the first call are not hidden."""
    first_call = [True]

    def call(*args: Any) -> Any:
        if not first_call:
            return compiled(*args)
        import torch._dynamo

        with torch._dynamo.config.patch(suppress_errors=True):
            result = compiled(*args)
        first_call.clear()
        return result

    return call


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
