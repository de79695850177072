"""FGGP (Zhu, Bezek & Goksel 2025, "Fixed-Rate Gradient-First Gradual Pruning").

At each step of the cubic schedule, among the active weights A take the floor(rate x |A|) with the
smallest |gradient| of the current minibatch as candidates, then prune the k candidates with the
smallest |weight|; the candidate set grows to k when k exceeds it. Global across layers;
no regrowth.
"""

from __future__ import annotations

import math

from torch import Tensor

from fggp_repro.masks import MaskSet
from fggp_repro.pruners.gradual import GradualPruner
from fggp_repro.selection import two_stage_select


class FGGP(GradualPruner):
    name = "fggp"

    def __init__(self, masks: MaskSet, *, rate: float = 0.5, **schedule_and_target):
        super().__init__(masks, **schedule_and_target)
        self.rate = rate

    def select(self, k: int) -> Tensor:
        n_candidates = math.floor(self.rate * self.masks.active_count)
        return two_stage_select(
            self.masks.flat_grad_magnitudes(),
            self.masks.flat_weight_magnitudes(),
            self.masks.flat_mask(),
            n_candidates,
            k,
        )
