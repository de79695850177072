"""Dense training: no pruning at all, the upper bound every sparse method is compared against."""

from __future__ import annotations

from fggp_repro.pruners.base import Pruner


class Dense(Pruner):
    name = "dense"
    uses_initial_state = False

    def at_init(self) -> None:
        """Stay dense whatever initial state was asked for."""
