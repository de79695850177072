"""Pruning at initialisation: score every prunable weight once before training, keep exactly
the count that leaves density d_f over the MaskSet's base, then train with the mask fixed."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fggp_repro.pruners.base import Pruner, PrunerTraits
from fggp_repro.sparsity.selection import largest_k, smallest_k

if TYPE_CHECKING:
    from torch import Tensor, nn


class OneShotPruner(Pruner):
    """Pruning at initialisation sets one mask before training: no initial state, no schedule."""

    traits = PrunerTraits(uses_initial_state=False, uses_schedule=False)
    #: SNIP and SynFlow drop the lowest scores, GraSP the highest
    prune_highest = False

    def at_init(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> None:
        scores = self.scores(model, batches)
        active = self.masks.flat_mask()
        k = self.masks.active_count - self.masks.target_active(self.target_density)
        pick = largest_k if self.prune_highest else smallest_k
        self.masks.prune(pick(scores, active, k))

    def scores(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> Tensor:
        """One score per prunable weight, flat in MaskSet order."""
        raise NotImplementedError


def scoring_copy(model: nn.Module, names: list[str]) -> tuple[nn.Module, list[nn.Parameter]]:
    """A copy to score on, so neither the weights, their .grad nor BatchNorm's running statistics
    of the network about to be trained are touched; and its weights in MaskSet order."""
    clone = copy.deepcopy(model)
    clone.zero_grad(set_to_none=True)
    parameters = dict(clone.named_parameters())
    return clone, [parameters[name] for name in names]


def take(batches: Iterable[tuple[Tensor, Tensor]], n: int) -> list[tuple[Tensor, Tensor]]:
    taken = list(itertools.islice(batches, n))
    if not taken:
        raise ValueError("pruning at initialisation needs at least one training batch")
    return taken
