"""Everything a run needs to continue bit for bit after a kill: model, optimizer, LR schedule,
masks, the pruner's state, the counters, every random generator and, when it was stopped
mid-epoch, that epoch's data order and running sums. The loop that advances it is in trainer.py;
how one step runs is in steps.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from fggp_repro.foundations.spec import OptimSpec
from fggp_repro.pruners.base import Pruner
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.training.data import ImageData, train_batches
from fggp_repro.training.flops import MaskHistory


def make_optimizer(model: nn.Module, optim: OptimSpec) -> torch.optim.SGD:
    """SGD with its momentum buffers made now, as zeros, rather than inside its first step: a
    captured step must find them outside its graph's memory. With dampening 0, SGD's first step
    gives the same buffer either way (0 x momentum + grad = grad, exactly)."""
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=optim.lr,
        momentum=optim.momentum,
        nesterov=optim.nesterov,
        weight_decay=optim.weight_decay,
        foreach=True,  # one kernel per operation over all parameters, not one per parameter
    )
    if optim.momentum:
        for group in optimizer.param_groups:
            for param in group["params"]:
                optimizer.state[param]["momentum_buffer"] = torch.zeros_like(param)
    return optimizer


@dataclass
class StepReport:
    """Which step path ran, how much work it did, and every fallback with its reason; kept with
    the state, so a resumed run reports its whole history. Steps undone by a fallback count too."""

    requested: str = "none"
    used: list[str] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)
    captures: int = 0
    compilations: int = 0
    setup_seconds: float = 0.0
    fallbacks: list[dict[str, Any]] = field(default_factory=list)

    def count(self, path: str) -> None:
        self.steps[path] = self.steps.get(path, 0) + 1

    def start(self, path: str) -> None:
        if not self.used or self.used[-1] != path:
            self.used.append(path)


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
        self, model: nn.Module, masks: MaskSet, pruner: Pruner, optim: OptimSpec, seed: int
    ):
        device = next(model.parameters()).device
        self.device = device
        self.model, self.masks, self.pruner = model, masks, pruner
        self.optimizer = make_optimizer(model, optim)
        self.lr_schedule = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(optim.milestones), gamma=optim.gamma
        )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=optim.label_smoothing)
        self.data_generator = torch.Generator(device=device).manual_seed(seed)
        self.init_generator = torch.Generator(device=device).manual_seed(seed + 1)
        self.epoch = 0  # completed epochs
        self.iteration = 0  # completed steps
        self.train_seconds = 0.0  # in the steps of completed epochs
        self.wall_seconds = 0.0  # the epoch loop's: steps, tests, checkpoints, captures, rollbacks
        self.checkpoint_seconds = 0.0
        self.images_seen = 0
        self.step_report = StepReport()
        self.history: list[dict[str, Any]] = []
        self.epoch_progress: EpochProgress | None = None
        self.mask_history = MaskHistory()
        #: told (iteration, active weights per layer) at the start and after each step at which
        #: the pruner may have changed the mask: the FLOPs history, a tracker, whatever follows
        self.on_mask_change: list[Callable[[int, list[int]], None]] = [self.mask_history.record]
        self.memory_format = torch.contiguous_format

    def forward_loss(self, images: Tensor, labels: Tensor, bf16: bool) -> tuple[Tensor, Tensor]:
        """Forward pass, loss, and the number of correct predictions. Autocast keeps no cache of
        cast weights: a captured graph would replay stale ones (the values are the same)."""
        with torch.autocast(
            images.device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False
        ):
            logits = self.model(images)
            loss = self.criterion(logits, labels)
        return loss, (logits.detach().argmax(1) == labels).sum()

    def update(self) -> None:
        """Optimizer step, then masked weights and their momentum back to zero."""
        self.optimizer.step()
        self.masks.apply_(self.optimizer)

    def begin(self, data: ImageData, batch_size: int) -> None:
        """A fresh run's start: the pruner's initial mask (scoring batches for SNIP-like
        methods), applied to the weights. A resumed run skips this."""
        self.pruner.at_init(self.model, train_batches(data, batch_size, self.init_generator))
        self.masks.apply_(self.optimizer)
        self.mask_changed(0)

    def mask_changed(self, iteration: int) -> None:
        """The mask may have changed before `iteration`: count it once (a device sync) and
        tell the listeners."""
        counts = self.masks.layer_active_counts()
        for listener in self.on_mask_change:
            listener(iteration, counts)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the whole state, on its device, for `restore`."""
        return copy.deepcopy(self.state_dict())

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Back to a snapshot, keeping what the lost steps cost (step report, time spent)."""
        report, wall, checkpoints = self.step_report, self.wall_seconds, self.checkpoint_seconds
        self.load_state_dict(snapshot)
        self.step_report, self.wall_seconds, self.checkpoint_seconds = report, wall, checkpoints

    def state_dict(self) -> dict[str, Any]:
        progress = self.epoch_progress
        cuda = self.device.type == "cuda"
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
            "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
            "epoch": self.epoch,
            "iteration": self.iteration,
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "checkpoint_seconds": self.checkpoint_seconds,
            "images_seen": self.images_seen,
            "step_report": asdict(self.step_report),
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
        cuda_rng = state["cuda_rng"]
        if isinstance(cuda_rng, list) and cuda_rng:  # written before one device's state was kept
            torch.cuda.set_rng_state_all(cuda_rng)
        elif cuda_rng is not None and not isinstance(cuda_rng, list):
            torch.cuda.set_rng_state(cuda_rng, self.device)
        self.epoch, self.iteration = state["epoch"], state["iteration"]
        self.train_seconds, self.images_seen = state["train_seconds"], state["images_seen"]
        self.wall_seconds = state.get("wall_seconds", 0.0)
        self.checkpoint_seconds = state.get("checkpoint_seconds", 0.0)
        self.step_report = StepReport(**state.get("step_report", {}))
        self.history = list(state["history"])
        self.mask_history.load_state_dict(state["mask_events"])
        progress = state["epoch_progress"]
        self.epoch_progress = None if progress is None else EpochProgress(**progress)
