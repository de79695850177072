"""RigL (Evci et al. 2020, "Rigging the Lottery: Making All Tickets Winners").

Sparse from scratch at the final density with ERK layer densities; every `interval` completed
steps until `end_fraction` of training (0.75), in each layer drop round(f_t x nnz) smallest-|w|
active weights and regrow as many at the largest dense |grad| among inactive positions (new
weights start at zero); f_t is cosine-annealed from `drop_fraction` (0.3) at step 0 to
`final_drop_fraction` (0) at the end of the updates. Constant sparsity.

GraNet's "DST" RigL (its `--method DST`) is the same update with drop_fraction 0.5,
final_drop_fraction 0.005, ceil instead of round, and updates for the whole run (end_fraction 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.options import Choice, bounded
from fggp_repro.foundations.spec import ScheduleSpec
from fggp_repro.pruners.base import Pruner, PrunerTraits
from fggp_repro.pruners.regrowth import drop_and_grow, gradient_growth
from fggp_repro.sparsity.schedule import cosine_decay, update_steps

if TYPE_CHECKING:
    from torch import Tensor, nn

    from fggp_repro.pruners.regrowth import GrowthRule
    from fggp_repro.sparsity.masks import MaskSet


class Rounding(Choice):
    """How a fraction of a layer's active weights becomes a count."""

    round = "round"
    ceil = "ceil"


@dataclass(frozen=True)
class RegrowthOptions:
    """Evci et al.'s defaults; GraNet's "DST" variant is drop_fraction 0.5, final_drop_fraction
    0.005, drop_rounding ceil, end_fraction 1 (what `protocol=granet` sets)."""

    drop_fraction: float = bounded(0.3, "(0, 1]")
    final_drop_fraction: float = bounded(0.0, "[0, 1]")
    drop_rounding: Rounding = Rounding.round
    end_fraction: float = bounded(0.75, "(0, 1]")


class RigL(Pruner):
    """Sets its own starting mask at the target, so it has no initial-state axis."""

    options = RegrowthOptions
    traits = PrunerTraits(uses_initial_state=False, reads_dense_gradient=True)

    @classmethod
    def check_settings(cls, options: Any, schedule: ScheduleSpec, total_iterations: int) -> None:
        """At least one mask update must fall inside the update window."""
        end = math.floor(options.end_fraction * total_iterations)
        if not update_steps(schedule.interval, schedule.start_iteration, end):
            raise ConfigError(
                f"its mask would never change: no multiple of schedule.interval="
                f"{schedule.interval} lies after iteration {schedule.start_iteration} and before "
                f"{end} (pruner.end_fraction={options.end_fraction} of {total_iterations}); "
                "lower schedule.interval or raise train.epochs"
            )

    def __init__(
        self,
        masks: MaskSet,
        *,
        drop_fraction: float = 0.3,
        final_drop_fraction: float = 0.0,
        drop_rounding: Rounding | str = Rounding.round,
        end_fraction: float = 0.75,
        interval: int = 2000,
        start_iteration: int = 0,
        **target,
    ):
        super().__init__(masks, **target)
        self.drop_fraction = drop_fraction
        self.final_drop_fraction = final_drop_fraction
        self.to_count = math.ceil if Rounding(drop_rounding) is Rounding.ceil else round
        self.end_iteration = math.floor(end_fraction * self.total_iterations)
        self.updates = update_steps(interval, start_iteration, self.end_iteration)

    def at_init(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> None:
        self.masks.init_random_erk(self.target_density, self.generator)

    def acts_at(self, iteration: int) -> bool:
        return iteration + 1 in self.updates

    def after_step(self, iteration: int) -> None:
        if not self.acts_at(iteration):
            return
        completed = iteration + 1
        fraction = cosine_decay(
            completed, self.end_iteration, self.drop_fraction, self.final_drop_fraction
        )
        counts = [self.to_count(fraction * n) for n in self.masks.layer_active_counts()]
        drop_and_grow(self.masks, counts, self.growth_rule())

    def growth_rule(self) -> GrowthRule:
        return gradient_growth(self.masks)
