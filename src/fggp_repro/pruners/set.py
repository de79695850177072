"""SET (Mocanu et al. 2018, "Scalable Training of Artificial Neural Networks with Adaptive
Sparse Connectivity inspired by Network Science").

RigL's schedule and drop rule, but the regrown connections are drawn uniformly at random among
the inactive positions of each layer: exactly as many as were dropped, not a Bernoulli draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fggp_repro.pruners.base import PrunerTraits
from fggp_repro.pruners.regrowth import random_growth
from fggp_repro.pruners.rigl import RigL

if TYPE_CHECKING:
    from fggp_repro.pruners.regrowth import GrowthRule


class SET(RigL):
    traits = PrunerTraits(uses_initial_state=False)

    def growth_rule(self) -> GrowthRule:
        return random_growth(self.generator)
