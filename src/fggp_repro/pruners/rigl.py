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

from torch import Tensor, nn

from fggp_repro.config import Rounding
from fggp_repro.masks import MaskSet
from fggp_repro.pruners.base import Pruner
from fggp_repro.pruners.regrowth import GrowthRule, drop_and_grow, gradient_growth
from fggp_repro.schedule import cosine_decay, update_steps


class RigL(Pruner):
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
