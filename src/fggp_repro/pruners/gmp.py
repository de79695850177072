"""GMP (Zhu & Gupta 2017, "To prune, or not to prune"): on the cubic schedule, prune the active
weights of smallest magnitude, ranked globally across layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fggp_repro.pruners.gradual import GradualPruner
from fggp_repro.sparsity.selection import smallest_k

if TYPE_CHECKING:
    from torch import Tensor


class GMP(GradualPruner):
    def select(self, k: int, iteration: int) -> Tensor:
        return smallest_k(self.masks.flat_weight_magnitudes(), self.masks.flat_mask(), k)
