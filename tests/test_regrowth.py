"""GraNet, RigL and SET updates on hand-worked masks: who is dropped, who is grown, how many."""

import math

import pytest
import torch
from conftest import set_layer_values

from fggp_repro.pruners import SET, GraNet, RigL
from fggp_repro.pruners.regrowth import drop_and_grow, gradient_growth, random_growth
from fggp_repro.sparsity.erk import erk_counts
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.sparsity.schedule import cosine_decay

# flat index:    a0    a1    a2    a3    b0    b1
WEIGHTS = [0.50, -0.10, 0.30, 0.90, 0.20, -0.80]
GRADS = [0.20, 0.45, 0.01, 0.30, 0.02, 0.40]


def masks_of(model, active):
    masks = MaskSet([("a", model.a.weight), ("b", model.b.weight)])
    flat = torch.zeros(6, dtype=torch.bool)
    flat[active] = True
    masks.set_flat(flat)
    return masks


def active_set(masks):
    return masks.flat_mask().nonzero().squeeze(1).tolist()


def test_gradient_growth_takes_largest_grad_among_inactive_and_keeps_counts(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    masks = masks_of(two_linear, [0, 1, 2, 4])  # a: a0 a1 a2 active; b: b0 active
    # layer a: the smallest |w| among active a0 .5, a1 .1, a2 .3 is a1; inactive after the
    # drop: a1, a3; largest |g| among them: a1 (.45) -> a1 comes straight back, keeping its value.
    # layer b drops b0 (only active) and grows the largest |g| of b0 .02, b1 .4 -> b1
    drop_and_grow(masks, [1, 1], gradient_growth(masks))
    assert active_set(masks) == [0, 1, 2, 5]  # only b1 is new
    assert two_linear.a.weight.view(-1)[1].item() == pytest.approx(-0.10)  # regrown: kept
    assert two_linear.b.weight.view(-1)[0].item() == 0.0  # dropped: zeroed
    assert two_linear.b.weight.view(-1)[1].item() == 0.0  # grown: starts at zero


def test_grown_weights_and_momentum_start_at_zero(two_linear):
    torch.manual_seed(0)
    masks = MaskSet([("a", two_linear.a.weight), ("b", two_linear.b.weight)])
    masks.init_random([2, 1], torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(two_linear.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        two_linear(torch.randn(4, 2)).pow(2).sum().backward()
        optimizer.step()
        masks.apply_(optimizer)
    before = masks.flat_mask()
    for w, active in zip(masks.weights, torch.split(before, masks.sizes)):
        w.grad = torch.where(active.view_as(w), 1.0, 5.0)  # inactive positions will be grown
    drop_and_grow(masks, [1, 1], gradient_growth(masks))
    new = masks.flat_mask() & ~before
    assert new.any()
    weights = masks.flat(w.detach() for w in masks.weights)
    momentum = masks.flat(optimizer.state[w]["momentum_buffer"] for w in masks.weights)
    assert (weights[new] == 0).all() and (momentum[new] == 0).all()


def test_set_regrows_exactly_as_many_as_it_drops_at_random(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    counts = []
    for seed in range(20):
        masks = masks_of(two_linear, [0, 1, 3, 4])
        drop_and_grow(masks, [2, 1], random_growth(torch.Generator().manual_seed(seed)))
        layer_a = [i for i in active_set(masks) if i < 4]
        counts.append((len(layer_a), len(active_set(masks)) - len(layer_a)))
        assert 0 in layer_a or 3 in layer_a  # one of the two largest survives the drop
    assert set(counts) == {(3, 1)}


def test_granet_regeneration_count_and_rate(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    masks = masks_of(two_linear, [0, 1, 3, 4, 5])
    granet = GraNet(
        masks, target_density=0.5, total_iterations=40, initial_density=1.0,
        interval=4, end_fraction=0.25,  # pruning window [0, 8]: over by iteration 20
    )  # fmt: skip
    rate = cosine_decay(20, 40, 0.5, 0.005)
    assert [math.ceil(rate * n) for n in (3, 2)] == [1, 1]
    granet.after_step(19)  # 20 completed steps: regeneration only
    # layer a: drop a1 (.1), grow the largest |g| of inactive a1 .45, a2 .01 -> a1 again
    # layer b: drop b0 (.2), grow largest |g| of b0 .02 -> b0 (only inactive position)
    assert active_set(masks) == [0, 1, 3, 4, 5]
    granet.after_step(20)  # 21 completed steps: not an update step
    assert active_set(masks) == [0, 1, 3, 4, 5]


def test_granet_prunes_on_its_own_window_then_regenerates():
    torch.manual_seed(0)
    layer = torch.nn.Linear(10, 10, bias=False)
    masks = MaskSet([("w", layer.weight)])
    layer.weight.grad = torch.rand(10, 10)
    granet = GraNet(masks, target_density=0.2, total_iterations=100, interval=10, end_fraction=0.5)
    for t in range(100):
        granet.after_step(t)
        if t + 1 == 50:
            assert masks.active_count == 20  # the window ends at 50 with the target
    assert masks.active_count == 20 == int(masks.flat_mask().sum())


def test_granet_holds_back_pruning_and_regeneration_until_its_start():
    """start_iteration 50, interval 10: GraNet's code neither prunes nor regrows before step 50
    (its init_prune_epoch); it acts after the 50th completed step, and every 10th after it."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(10, 10, bias=False)
    masks = MaskSet([("w", layer.weight)])
    layer.weight.grad = torch.rand(10, 10)
    granet = GraNet(masks, target_density=0.2, total_iterations=200, interval=10,
                    start_iteration=50, end_fraction=0.5)  # fmt: skip
    before = masks.flat_mask().clone()
    for t in range(49):
        assert not granet.acts_at(t), t
        granet.after_step(t)
        assert torch.equal(masks.flat_mask(), before), t
    assert granet.acts_at(49)  # the schedule starts at density 1 there: the first cut is at 60
    for t in range(49, 60):
        granet.after_step(t)
    assert masks.active_count < masks.numel


def test_rigl_starts_at_erk_final_density_and_keeps_it():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.Linear(30, 10))
    masks = MaskSet.from_model(model)
    rigl = RigL(masks, target_density=0.1, total_iterations=100, interval=10, seed=1)
    rigl.at_init(model, [])
    expected = erk_counts([w.shape for w in masks.weights], round(0.1 * masks.numel))
    assert [int(m.sum()) for m in masks.masks] == expected
    assert sum(expected) == round(0.1 * masks.numel)
    for w in masks.weights:
        w.grad = torch.rand_like(w)
    before = masks.flat_mask()
    rigl.after_step(9)  # 10 completed: an update, drop fraction 0.3 x (1 + cos(pi 10/75)) / 2
    fraction = cosine_decay(10, 75, 0.3, 0.0)
    changed = int((masks.flat_mask() & ~before).sum())
    assert changed <= sum(round(fraction * n) for n in expected)
    assert [int(m.sum()) for m in masks.masks] == expected
    frozen = masks.flat_mask()
    rigl.after_step(79)  # 80 completed: after end_fraction 0.75, no more updates
    assert torch.equal(masks.flat_mask(), frozen)


def test_rigl_grows_largest_grad_per_layer():
    layer = torch.nn.Linear(4, 1, bias=False)
    masks = MaskSet([("w", layer.weight)])
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 0.1, 0.3, 0.7]]))
    masks.set_flat(torch.tensor([True, True, True, False]))
    layer.weight.grad = torch.tensor([[0.0, 0.2, 0.0, 0.9]])
    rigl = RigL(masks, target_density=0.75, total_iterations=100, interval=1, drop_fraction=1.0)
    rigl.after_step(0)  # fraction ~ 1 -> round(~1 x 3) = 3 dropped: all; grow the 3 largest |g|
    # inactive after the drop: all four; |g| ranks w3 .9, w1 .2, then w0/w2 tie at 0 -> w0
    assert active_set(masks) == [0, 1, 3]


def test_set_is_rigl_with_random_growth():
    layer = torch.nn.Linear(50, 20, bias=False)
    masks = MaskSet([("w", layer.weight)])
    set_pruner = SET(masks, target_density=0.2, total_iterations=100, interval=10, seed=4)
    set_pruner.at_init(layer, [])
    layer.weight.grad = torch.zeros_like(layer.weight)
    before = masks.flat_mask()
    set_pruner.after_step(9)
    assert masks.active_count == int(masks.flat_mask().sum()) == 200
    assert not torch.equal(masks.flat_mask(), before)


def ranked_layer():
    """One layer of 40 weights w_i = i + 1, the 20 smallest (w0..w19) active."""
    layer = torch.nn.Linear(40, 1, bias=False)
    masks = MaskSet([("w", layer.weight)])
    with torch.no_grad():
        layer.weight.copy_(torch.arange(1.0, 41.0).view(1, 40))
    masks.set_flat(torch.arange(40) < 20)
    return layer, masks


def test_granet_regeneration_moves_weights_to_large_gradients(two_linear):
    """After its window GraNet only regenerates: the mask must change where a dropped weight's
    place is taken by a larger-gradient one (without regeneration it would stay as it is)."""
    set_layer_values(two_linear, WEIGHTS, [0.20, 0.01, 0.90, 0.30, 0.02, 0.40])
    masks = masks_of(two_linear, [0, 1, 3, 4])  # a: a0 a1 a3 active, a2 not; b: b0 active
    granet = GraNet(
        masks, target_density=0.5, total_iterations=40, interval=4, end_fraction=0.25
    )  # fmt: skip
    granet.after_step(19)  # 20 completed, after the window: ceil(r x 3) = 1, ceil(r x 1) = 1
    # layer a: drop a1 (|w| .1), grow the larger |g| of inactive a1 .01, a2 .9 -> a2
    # layer b: drop b0 (|w| .2), grow the larger |g| of b0 .02, b1 .4 -> b1
    assert active_set(masks) == [0, 2, 3, 5]


def test_granet_regrows_where_the_dense_gradient_is_largest():
    layer, masks = ranked_layer()
    layer.weight.grad = torch.zeros(1, 40)
    layer.weight.grad[0, 30:36] = torch.arange(1.0, 7.0)
    granet = GraNet(masks, target_density=0.5, total_iterations=40, interval=4, end_fraction=0.25)
    granet.after_step(19)  # after the window: r = .2525 at t = 20 of 40, ceil(.2525 x 20) = 6
    # w0..w5 (smallest |w|) go; w30..w35 (largest |g|) come
    assert active_set(masks) == [*range(6, 20), *range(30, 36)]


def test_rigl_grows_where_the_dense_gradient_is_largest():
    layer, masks = ranked_layer()  # w0..w19 active
    layer.weight.grad = torch.zeros(1, 40)
    layer.weight.grad[0, 30:35] = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    rigl = RigL(masks, target_density=0.5, total_iterations=100, interval=1, drop_fraction=0.25)
    rigl.after_step(0)  # f = .25 x (1 + cos(pi / 75)) / 2 -> round(.2498 x 20) = 5 dropped
    # the five smallest |w| (w0..w4) go; the five largest |g| among inactive (w30..w34) come
    assert active_set(masks) == [*range(5, 20), *range(30, 35)]


def test_set_grows_at_random_not_where_the_gradient_is_largest():
    grown = set()
    for seed in range(8):
        layer, masks = ranked_layer()
        layer.weight.grad = torch.zeros(1, 40)
        layer.weight.grad[0, 30:35] = 1.0
        SET(masks, target_density=0.5, total_iterations=100, interval=1, drop_fraction=0.25,
            seed=seed).after_step(0)  # fmt: skip
        after = set(active_set(masks))
        assert len(after) == 20 and set(range(5, 20)) <= after
        grown |= after - set(range(5, 20))
    # 8 draws of 5 among 25 positions reach far beyond the 5 of largest gradient
    assert len(grown - set(range(30, 35))) >= 10


def test_granet_dst_rigl_counts_with_ceil_and_anneals_to_its_final_fraction():
    layer, masks = ranked_layer()
    layer.weight.grad = torch.arange(40.0).view(1, 40)  # larger index, larger |g|
    dst = RigL(
        masks, target_density=0.5, total_iterations=100, interval=10, drop_fraction=0.5,
        final_drop_fraction=0.005, drop_rounding="ceil", end_fraction=1.0,
    )  # fmt: skip
    assert dst.acts_at(89) and not dst.acts_at(99)  # the last update is at 90 of 100 steps
    dst.after_step(89)  # t = 90: r = .005 + .495 (1 + cos(.9 pi)) / 2 = .0171 -> ceil(.34) = 1
    # one dropped (w0, smallest |w|), one grown (w39, largest |g|); round() would drop none
    assert active_set(masks) == [*range(1, 20), 39]
