"""Everything a run needs to continue bit for bit after a kill: model, optimizer, LR schedule,
masks, the pruner's state, the counters, every random generator and, when it was stopped
mid-epoch, that epoch's data order and running sums. The loop that advances it is in trainer.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fggp_repro.compiling import compiled
from fggp_repro.data import ImageData, train_batches
from fggp_repro.flops import MaskHistory
from fggp_repro.masks import MaskSet
from fggp_repro.pruners.base import Pruner
from fggp_repro.spec import OptimSpec


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
        #: told (iteration, active weights per layer) at the start and after each step at which
        #: the pruner may have changed the mask: the FLOPs history, a tracker, whatever follows
        self.on_mask_change: list[Callable[[int, list[int]], None]] = [self.mask_history.record]
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
        """Compile the two halves of a step (see fggp_repro.compiling). The pruner's hooks run
        in Python between them, so a pruning event needs no special step; masks change in
        place, so it needs no recompilation either (tested)."""

        def update() -> None:
            self.optimizer.step()
            self.masks.apply_(self.optimizer, skip_when_dense=False)

        self.forward_loss = compiled(self._forward_loss, mode, backend)
        self.update = compiled(update, mode, backend)

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
