"""SNIP (Lee et al. 2019, "SNIP: Single-shot Network Pruning based on Connection Sensitivity").

At initialisation, score each weight by |g * w|, g the gradient of the cross-entropy on
`batches` training minibatches; keep the highest scores globally, train with the mask fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fggp_repro.foundations.options import bounded
from fggp_repro.pruners.at_init import OneShotPruner, scoring_copy, take

if TYPE_CHECKING:
    from torch import Tensor, nn

    from fggp_repro.sparsity.masks import MaskSet


def snip_scores(model: nn.Module, names: list[str], batches: list[tuple[Tensor, Tensor]]) -> Tensor:
    import torch

    from fggp_repro.sparsity.masks import flatten

    clone, weights = scoring_copy(model, names)
    for images, labels in batches:
        torch.nn.functional.cross_entropy(clone(images), labels).backward()
    return flatten((w.grad * w).abs() for w in weights).detach()


@dataclass(frozen=True)
class SNIPOptions:
    batches: int = bounded(1, "[1, inf)")


class SNIP(OneShotPruner):
    options = SNIPOptions

    def __init__(self, masks: MaskSet, *, batches: int = 1, **target):
        super().__init__(masks, **target)
        self.batches = batches

    def scores(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> Tensor:
        import torch

        with torch.enable_grad():
            return snip_scores(model, self.masks.names, take(batches, self.batches))
