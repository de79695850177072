"""Per-layer drop-and-grow, the update shared by GraNet, RigL and SET.

In each layer, the `n` active weights of smallest |w| are dropped and `n` positions inactive after
the drop are grown: those of largest dense |grad| (GraNet, RigL) or uniformly random ones (SET).
Drop and growth are decided together and applied as one mask update, as in the reference codes:
a weight dropped and grown again in the same update simply stays, while a newly grown weight was
masked before, so it and its momentum start from exactly zero. Per-layer counts never change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fggp_repro.sparsity.selection import largest_k, smallest_k

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from fggp_repro.sparsity.masks import MaskSet

    #: picks `n` flat indices (within one layer) among the eligible positions
    GrowthRule = Callable[[int, Tensor, slice], Tensor]


def gradient_growth(masks: MaskSet) -> GrowthRule:
    grads = masks.flat_grad_magnitudes()

    def grow(n: int, eligible: Tensor, layer: slice) -> Tensor:
        return largest_k(grads[layer], eligible, n)

    return grow


def random_growth(generator: torch.Generator) -> GrowthRule:
    import torch

    def grow(n: int, eligible: Tensor, layer: slice) -> Tensor:
        positions = eligible.nonzero().squeeze(1)
        draw = torch.randperm(positions.numel(), generator=generator)[:n]
        return positions[draw.to(positions.device)]

    return grow


def drop_and_grow(masks: MaskSet, drop_counts: Sequence[int], grow: GrowthRule) -> None:
    """Drop drop_counts[l] smallest-|w| active weights of layer l and grow as many."""
    before = masks.flat_mask()
    after = before.clone()
    magnitudes = masks.flat_weight_magnitudes()
    offset = 0
    for size, n in zip(masks.sizes, drop_counts, strict=True):
        layer = slice(offset, offset + size)
        offset += size
        if n <= 0:
            continue
        dropped = smallest_k(magnitudes[layer], before[layer], n)
        after[layer][dropped] = False
        after[layer][grow(n, ~after[layer], layer)] = True
    masks.set_flat(after)
