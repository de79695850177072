"""Erdos-Renyi-Kernel layer densities (Evci et al. 2020), solved with capping at 1."""

from __future__ import annotations

import math
from collections.abc import Sequence


def erk_densities(shapes: Sequence[Sequence[int]], density: float) -> list[float]:
    """Per-layer densities proportional to sum(shape) / prod(shape) whose weighted total equals
    `density`; a layer that would exceed 1 is made dense and the rest re-solved, until none does."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must lie in (0, 1], got {density}")
    sizes = [math.prod(shape) for shape in shapes]
    raw = [sum(shape) / size for shape, size in zip(shapes, sizes, strict=True)]
    dense: set[int] = set()
    while True:
        budget = density * sum(sizes) - sum(sizes[i] for i in dense)
        free = [i for i in range(len(shapes)) if i not in dense]
        eps = budget / sum(raw[i] * sizes[i] for i in free)
        over = {i for i in free if eps * raw[i] > 1.0}
        if not over:
            break
        dense |= over
    return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))]


def erk_counts(shapes: Sequence[Sequence[int]], total: int) -> list[int]:
    """Active weights per layer, `total` in all: each layer's ERK count at density
    total / size rounded down or up (largest remainder first, then layer order)."""
    sizes = [math.prod(shape) for shape in shapes]
    if not 0 < total <= sum(sizes):
        raise ValueError(f"cannot keep {total} of {sum(sizes)} weights active")
    densities = erk_densities(shapes, total / sum(sizes))
    exact = [d * n for d, n in zip(densities, sizes, strict=True)]
    counts = [min(math.floor(x), n) for x, n in zip(exact, sizes, strict=True)]
    shortfall = total - sum(counts)
    by_remainder = sorted(range(len(shapes)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder:
        if shortfall <= 0:
            break
        if counts[i] < sizes[i]:
            counts[i] += 1
            shortfall -= 1
    return counts
