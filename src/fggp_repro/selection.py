"""Exact-count, deterministic selection of flat weight indices.

Every rule selects by index, never by threshold, so ties (masked zeros, repeated values) can neither
make it keep more or fewer weights than asked nor depend on the device: a stable sort over the
eligible indices in ascending order breaks every tie towards the lower flat index.
"""

from __future__ import annotations

import torch
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
    order = torch.sort(scores.reshape(-1)[candidates], descending=descending, stable=True).indices
    return candidates[order[:k]]


def two_stage_select(
    first_scores: Tensor, second_scores: Tensor, eligible: Tensor, n_candidates: int, k: int
) -> Tensor:
    """Pick k weights in two stages: the n_candidates eligible ones with the smallest first score,
    then the k of those with the smallest second score.

    FGGP uses |grad| first and |w| second; GraNet's rule uses |w| first and |grad| second. When k
    exceeds n_candidates, the candidate set grows to k so that exactly k weights are always chosen.
    """
    n_candidates = min(max(n_candidates, k), int(eligible.sum()))
    chosen = smallest_k(first_scores, eligible, n_candidates)
    candidate_mask = torch.zeros_like(eligible, dtype=torch.bool).reshape(-1)
    candidate_mask[chosen] = True
    return smallest_k(second_scores, candidate_mask, k)
