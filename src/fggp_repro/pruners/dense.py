"""Dense training: no pruning at all, the upper bound every sparse method is compared against."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from fggp_repro.pruners.base import Pruner, PrunerTraits

if TYPE_CHECKING:
    from torch import Tensor, nn


class Dense(Pruner):
    traits = PrunerTraits(uses_target=False, uses_initial_state=False, uses_schedule=False)

    def at_init(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> None:
        """Stay dense whatever initial state was asked for."""
