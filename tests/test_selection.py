"""Selection rules on hand-worked tensors: every expected index set below was worked out by hand."""

import pytest
import torch
from conftest import set_layer_values

from fggp_repro.pruners import FGGP, GMP
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.sparsity.selection import largest_k, smallest_k, two_stage_select

# flat index:    a0    a1    a2    a3    b0    b1
WEIGHTS = [0.50, -0.10, 0.30, 0.90, 0.20, -0.80]
GRADS = [0.20, -0.05, 0.01, 0.30, 0.02, 0.40]


def fggp_on(model, rate: float) -> FGGP:
    masks = MaskSet([("a", model.a.weight), ("b", model.b.weight)])
    return FGGP(masks, rate=rate, target_density=0.1, total_iterations=100, interval=10)


def test_fggp_ranks_globally_across_layers(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    pruner = fggp_on(two_linear, rate=0.5)
    # candidates: floor(0.5 * 6) = 3 smallest |g| -> a2 (.01), b0 (.02), a1 (.05)
    # prune the 2 of them with smallest |w| -> a1 (.10), b0 (.20)
    assert sorted(pruner.select(2, 0).tolist()) == [1, 4]


def test_fggp_differs_from_magnitude_only(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    # rate 1/3: candidates are floor(2) smallest |g| = a2 (.01), b0 (.02); the smaller |w| of
    # those is b0 (.20), whereas magnitude alone would pick a1 (.10).
    pruner = fggp_on(two_linear, rate=1 / 3)
    assert pruner.select(1, 0).tolist() == [4]


def test_fggp_candidate_set_grows_to_k(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    pruner = fggp_on(two_linear, rate=0.2)  # floor(1.2) = 1 candidate, k = 4 > 1
    # the candidate set becomes the 4 smallest |g|: a2, b0, a1, a0; all four go
    assert sorted(pruner.select(4, 0).tolist()) == [0, 1, 2, 4]


def test_fggp_never_chooses_masked_weights(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    pruner = fggp_on(two_linear, rate=0.5)
    pruner.masks.prune(torch.tensor([1, 2]))  # a1, a2 masked: their w is now 0
    # active: a0 a3 b0 b1 (|g| .2 .3 .02 .4); candidates floor(0.5*4)=2 -> b0, a0
    # smallest |w| of those -> b0 (.2)
    assert pruner.select(1, 0).tolist() == [4]
    assert sorted(pruner.select(2, 0).tolist()) == [0, 4]


def test_fggp_ties_break_towards_lower_flat_index(two_linear):
    set_layer_values(two_linear, [0.3] * 6, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    pruner = fggp_on(two_linear, rate=0.5)
    # all |g| tie -> candidates a0 a1 a2; all |w| tie -> a0 a1
    assert pruner.select(2, 0).tolist() == [0, 1]
    set_layer_values(two_linear, [0.3, 0.3, 0.2, 0.2, 0.2, 0.1], [0.5, 0.1, 0.1, 0.5, 0.1, 0.1])
    # |g| ties at .1 for a1 a2 b0 b1 -> 3 candidates are a1 a2 b0 (lower indices first)
    # |w| among them: a1 .3, a2 .2, b0 .2 -> tie between a2 and b0, lower index a2 first
    assert pruner.select(1, 0).tolist() == [2]


def test_gmp_takes_smallest_magnitudes_globally(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    masks = MaskSet([("a", two_linear.a.weight), ("b", two_linear.b.weight)])
    gmp = GMP(masks, target_density=0.1, total_iterations=100, interval=10)
    assert sorted(gmp.select(3, 0).tolist()) == [1, 2, 4]


def test_primitives_on_ties_and_eligibility():
    scores = torch.tensor([2.0, 1.0, 1.0, 0.0, 1.0])
    eligible = torch.tensor([True, True, True, False, True])
    assert smallest_k(scores, eligible, 2).tolist() == [1, 2]
    assert largest_k(scores, eligible, 2).tolist() == [0, 1]
    assert smallest_k(scores, eligible, 0).tolist() == []
    with pytest.raises(ValueError):
        smallest_k(scores, eligible, 5)


def test_two_stage_swaps_order():
    w = torch.tensor([0.1, 0.2, 0.3, 0.4])
    g = torch.tensor([0.4, 0.3, 0.2, 0.1])
    everyone = torch.ones(4, dtype=torch.bool)
    # gradient first: candidates (2) = idx 3, 2 -> smallest |w| = idx 2
    assert two_stage_select(g, w, everyone, 2, 1).tolist() == [2]
    # magnitude first: candidates (2) = idx 0, 1 -> smallest |g| = idx 1
    assert two_stage_select(w, g, everyone, 2, 1).tolist() == [1]
