"""Exact-count, deterministic selection of flat weight indices.

Every rule selects exactly k indices, so ties (masked zeros, repeated values) can neither make it
keep more or fewer weights than asked nor depend on the device: entries strictly beyond the k-th
value are all taken, and the entries equal to it are taken in ascending flat index until there
are k, which is the set a stable sort would give. Indices come back in ascending order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def smallest_k(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """Flat indices of the k eligible entries with the smallest score (ties: lower index first)."""
    return _extreme_k(scores, eligible, k, descending=False)


def largest_k(scores: Tensor, eligible: Tensor, k: int) -> Tensor:
    """Flat indices of the k eligible entries with the largest score (ties: lower index first)."""
    return _extreme_k(scores, eligible, k, descending=True)


def _extreme_k(scores: Tensor, eligible: Tensor, k: int, descending: bool) -> Tensor:
    candidates = eligible.reshape(-1).nonzero().squeeze(1)
    if not 0 <= k <= candidates.numel():
        raise ValueError(f"cannot select {k} of {candidates.numel()} eligible entries")
    if k == 0 or k == candidates.numel():
        return candidates[:k]
    values = scores.reshape(-1)[candidates]
    if descending:
        values = -values
    kth = _kth_smallest(values, k)
    chosen = values < kth
    ties = (values == kth).nonzero().squeeze(1)
    chosen[ties[: k - int(chosen.sum())]] = True
    return candidates[chosen]


def _kth_smallest(values: Tensor, k: int) -> Tensor:
    """kthvalue is linear-time on the CPU; on CUDA it is reported far slower than a sort
    (pytorch#75599), so the GPU sorts."""
    import torch

    if values.device.type == "cpu":
        return torch.kthvalue(values, k).values
    return torch.sort(values).values[k - 1]


def two_stage_select(
    first_scores: Tensor, second_scores: Tensor, eligible: Tensor, n_candidates: int, k: int
) -> Tensor:
    """Pick k weights in two stages: the n_candidates eligible ones with the smallest first score,
    then the k of those with the smallest second score.

    FGGP uses |grad| first and |w| second; GraNet's rule uses |w| first and |grad| second. When k
    exceeds n_candidates, the candidate set grows to k so that exactly k weights are always chosen.
    """
    import torch

    n_candidates = min(max(n_candidates, k), int(eligible.sum()))
    chosen = smallest_k(first_scores, eligible, n_candidates)
    candidate_mask = torch.zeros_like(eligible, dtype=torch.bool).reshape(-1)
    candidate_mask[chosen] = True
    return smallest_k(second_scores, candidate_mask, k)
