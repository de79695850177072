"""Two-stage selection: FGGP and the three other corners of its 2x2 ablation, counted as the
authors' `main_proposed_class_schedule_cifar.py` counts them.

Two independent settings. The *rate policy* decides how many active weights are candidates:
  fixed (FGGP, Zhu, Bezek & Goksel 2025): c = floor(r x |A|), grown to k when k is larger;
  annealed (GraNet's count, Liu et al. 2021): c = k + floor((|A| - k) x r_t), r_t cosine-annealed
      from `rate` to `final_rate` over the whole of training, stepped every iteration.
The *order* decides which criterion picks the c candidates, and so which one picks the k pruned
among them:
  gradient_first: the c smallest |grad| of the current minibatch, then the k smallest |w|;
  magnitude_first: the c smallest |w|, then the k smallest |grad| (the c - k of largest |grad|
      are given back).
So `fggp` is (gradient_first, fixed), the authors' "GraNet in our framework" is
(magnitude_first, annealed) = `mfgn_annealed`, and the other two are their "modification 1"
(`mfgn`) and "modification 2" (`fggp_annealed`). Selection is global across layers, exactly k
weights go, and there is no regrowth. |A| counts the active parameters of the MaskSet's density
base, as the authors' `remain` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fggp_repro.foundations.options import Choice, bounded
from fggp_repro.pruners.gradual import GradualPruner
from fggp_repro.sparsity.schedule import cosine_decay
from fggp_repro.sparsity.selection import two_stage_select

if TYPE_CHECKING:
    from torch import Tensor

    from fggp_repro.sparsity.masks import MaskSet


class Order(Choice):
    """Which criterion picks the candidates in two-stage selection."""

    gradient_first = "gradient_first"
    magnitude_first = "magnitude_first"


class RatePolicy(Choice):
    """Fixed candidate rate, or cosine-annealed over training."""

    fixed = "fixed"
    annealed = "annealed"


@dataclass(frozen=True)
class TwoStageOptions:
    order: Order = Order.gradient_first
    rate_policy: RatePolicy = RatePolicy.fixed
    rate: float = bounded(0.5, "(0, 1]")
    final_rate: float = bounded(0.005, "(0, 1]")


def candidate_count(policy: RatePolicy, rate: float, active: int, k: int) -> int:
    """How many active weights the first criterion keeps as candidates (before growing to k)."""
    if policy is RatePolicy.fixed:
        return math.floor(rate * active)
    return k + math.floor((active - k) * rate)


class TwoStage(GradualPruner):
    options = TwoStageOptions

    @classmethod
    def unused_options(cls, options: Any) -> list[str]:
        """A fixed rate never anneals, so its final rate is not part of the experiment."""
        return ["final_rate"] if RatePolicy(options.rate_policy) is RatePolicy.fixed else []

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
        n_candidates = candidate_count(
            self.rate_policy, self.rate_at(iteration), self.masks.active_over_base, k
        )
        grads = self.masks.flat_grad_magnitudes()
        weights = self.masks.flat_weight_magnitudes()
        first, second = (grads, weights) if self.order is Order.gradient_first else (weights, grads)
        return two_stage_select(first, second, self.masks.flat_mask(), n_candidates, k)


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
