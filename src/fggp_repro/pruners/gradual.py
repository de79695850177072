"""Gradual pruning on the cubic schedule: at each pruning step remove exactly the number of active
weights that brings the global density (over the MaskSet's base) down to the schedule's value;
never regrow."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.spec import ScheduleSpec
from fggp_repro.pruners.base import Pruner
from fggp_repro.sparsity.schedule import CubicSchedule, schedule_window

if TYPE_CHECKING:
    from torch import Tensor

    from fggp_repro.sparsity.masks import MaskSet


class GradualPruner(Pruner):
    """Subclasses say which k active weights go (`select`); this class says when and how many."""

    def __init__(
        self,
        masks: MaskSet,
        *,
        interval: int = 2000,
        start_iteration: int = 0,
        end_fraction: float = 0.8,
        **target,
    ):
        super().__init__(masks, **target)
        self.schedule = CubicSchedule.build(
            self.total_iterations,
            self.initial_density,
            self.target_density,
            interval,
            start_iteration,
            end_fraction,
        )

    @classmethod
    def check_settings(cls, options: Any, schedule: ScheduleSpec, total_iterations: int) -> None:
        """The schedule must fit at least one pruning step into its window."""
        window = schedule_window(asdict(schedule), asdict(options))
        try:
            CubicSchedule.build(
                total_iterations, 1.0, 0.5, window["interval"], window["start_iteration"],
                window["end_fraction"],
            )  # fmt: skip
        except ValueError as error:
            raise ConfigError(f"{error}: lower schedule.interval or raise train.epochs") from None

    def after_backward(self, iteration: int) -> None:
        self.prune_on_schedule(iteration)

    def acts_at(self, iteration: int) -> bool:
        return self.schedule.is_pruning_step(iteration)

    def prune_on_schedule(self, iteration: int) -> None:
        if not self.schedule.is_pruning_step(iteration):
            return
        density = self.schedule.density_at(iteration)
        k = self.masks.active_count - self.masks.target_active(density)
        if k > 0:
            self.masks.prune(self.select(k, iteration))

    def select(self, k: int, iteration: int) -> Tensor:
        """Flat indices of the k active weights to prune at this iteration."""
        raise NotImplementedError
