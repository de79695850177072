"""Two-stage selection: FGGP and the three other corners of its 2x2 ablation.

One mechanism, two settings. `order`: which criterion picks the candidates first.
  gradient_first (FGGP, Zhu, Bezek & Goksel 2025): the floor(r_t x |A|) active weights with the
      smallest |grad| of the current minibatch are candidates; the k of them with the smallest
      |w| are pruned (the candidate set grows to k when k is larger).
  magnitude_first (GraNet's rule without regeneration, Liu et al. 2021): the k + a_t active
      weights with the smallest |w| are candidates, a_t = floor((|A| - k) x r_t); the a_t of them
      with the largest |grad| are given back, i.e. the k with the smallest |grad| are pruned.
`rate_policy`: fixed r_t = rate, or annealed: cosine from `rate` to `final_rate` over the whole
of training, stepped every iteration. Selection is global across layers; there is no regrowth.
|A| counts the active parameters of the MaskSet's density base, as the authors' `remain` does.
"""

from __future__ import annotations

import math

from torch import Tensor

from fggp_repro.config import Order, RatePolicy
from fggp_repro.masks import MaskSet
from fggp_repro.pruners.gradual import GradualPruner
from fggp_repro.schedule import cosine_decay
from fggp_repro.selection import two_stage_select


class TwoStage(GradualPruner):
    def __init__(
        self,
        masks: MaskSet,
        *,
        order: Order | str = Order.gradient_first,
        rate_policy: RatePolicy | str = RatePolicy.fixed,
        rate: float = 0.5,
        final_rate: float = 0.005,
        **schedule_and_target,
    ):
        super().__init__(masks, **schedule_and_target)
        self.order = Order(order)
        self.rate_policy = RatePolicy(rate_policy)
        self.rate = rate
        self.final_rate = final_rate

    def rate_at(self, iteration: int) -> float:
        if self.rate_policy is RatePolicy.fixed:
            return self.rate
        return cosine_decay(iteration, self.total_iterations, self.rate, self.final_rate)

    def select(self, k: int, iteration: int) -> Tensor:
        rate, active = self.rate_at(iteration), self.masks.active_over_base
        grads = self.masks.flat_grad_magnitudes()
        weights = self.masks.flat_weight_magnitudes()
        eligible = self.masks.flat_mask()
        if self.order is Order.gradient_first:
            return two_stage_select(grads, weights, eligible, math.floor(rate * active), k)
        given_back = math.floor((active - k) * rate)
        return two_stage_select(weights, grads, eligible, k + given_back, k)


class FGGP(TwoStage):
    """FGGP as published: gradient first, fixed rate r (0.5 in the authors' defaults)."""

    def __init__(self, masks: MaskSet, *, rate: float = 0.5, **schedule_and_target):
        super().__init__(
            masks,
            order=Order.gradient_first,
            rate_policy=RatePolicy.fixed,
            rate=rate,
            **schedule_and_target,
        )
