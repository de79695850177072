"""Dense training: no pruning at all, the upper bound every sparse method is compared against."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from fggp_repro.pruners.base import Pruner


class Dense(Pruner):
    def at_init(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> None:
        """Stay dense whatever initial state was asked for."""
