"""GraNet (Liu et al., NeurIPS 2021, "Sparse Training via Boosting Pruning Plasticity with
Neuroregeneration").

Every `interval` completed steps from `start_iteration` on: first, inside its own pruning window
(default epochs 0-80 of 160, `end_fraction` 0.5), GMP's cubic global magnitude pruning; then, for
the whole of training,
zero-cost neuroregeneration: in each layer drop ceil(rate x nnz) smallest-|w| active weights and
regrow as many at the largest dense |grad| among inactive positions, new weights starting at zero.
The rate cosine-decays from `initial_rate` (0.5) to `final_rate` (0.005) over all of training,
stepped every iteration. Like GraNet's code, it acts after the optimizer step of the minibatch
whose gradient it reads, and counts completed steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fggp_repro.foundations.options import bounded
from fggp_repro.pruners.base import PrunerTraits
from fggp_repro.pruners.gradual import GradualPruner
from fggp_repro.pruners.regrowth import drop_and_grow, gradient_growth
from fggp_repro.sparsity.schedule import cosine_decay
from fggp_repro.sparsity.selection import smallest_k

if TYPE_CHECKING:
    from torch import Tensor

    from fggp_repro.sparsity.masks import MaskSet


@dataclass(frozen=True)
class GraNetOptions:
    initial_rate: float = bounded(0.5, "(0, 1]")
    final_rate: float = bounded(0.005, "(0, 1]")
    end_fraction: float = bounded(0.5, "(0, 1]")


class GraNet(GradualPruner):
    options = GraNetOptions
    traits = PrunerTraits(reads_dense_gradient=True)

    def __init__(
        self,
        masks: MaskSet,
        *,
        initial_rate: float = 0.5,
        final_rate: float = 0.005,
        end_fraction: float = 0.5,
        **schedule_and_target,
    ):
        super().__init__(masks, end_fraction=end_fraction, **schedule_and_target)
        self.initial_rate = initial_rate
        self.final_rate = final_rate

    def after_backward(self, iteration: int) -> None:
        """GraNet reads the gradient after the optimizer step (see after_step)."""

    def acts_at(self, iteration: int) -> bool:
        """Every `interval` completed steps once `start_iteration` steps are done: GraNet's code
        holds back both pruning and regeneration until its `init_prune_epoch`."""
        completed = iteration + 1
        return completed >= self.schedule.start and completed % self.schedule.interval == 0

    def after_step(self, iteration: int) -> None:
        if not self.acts_at(iteration):
            return
        completed = iteration + 1
        self.prune_on_schedule(completed)
        rate = cosine_decay(completed, self.total_iterations, self.initial_rate, self.final_rate)
        counts = [math.ceil(rate * n) for n in self.masks.layer_active_counts()]
        drop_and_grow(self.masks, counts, gradient_growth(self.masks))

    def select(self, k: int, iteration: int) -> Tensor:
        return smallest_k(self.masks.flat_weight_magnitudes(), self.masks.flat_mask(), k)
