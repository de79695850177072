"""The cubic schedule against its formula, and ERK densities against a hand-solved case."""

import math

import pytest
from conftest import spec

from fggp_repro.models import build_backbone
from fggp_repro.sparsity.erk import erk_counts, erk_densities
from fggp_repro.sparsity.masks import MaskSet, active_target, prunable_weights
from fggp_repro.sparsity.schedule import CubicSchedule, cubic_density


def test_cubic_density_at_start_middle_end():
    d_i, d_f = 1.0, 0.05
    assert cubic_density(0, d_i, d_f, 0, 1000) == d_i
    assert cubic_density(500, d_i, d_f, 0, 1000) == pytest.approx(0.05 + 0.95 * 0.125)
    assert cubic_density(250, d_i, d_f, 0, 1000) == pytest.approx(0.05 + 0.95 * 0.75**3)
    assert cubic_density(1000, d_i, d_f, 0, 1000) == d_f
    assert cubic_density(5000, d_i, d_f, 0, 1000) == d_f
    # from a 50% sparse start
    assert cubic_density(500, 0.5, 0.02, 0, 1000) == pytest.approx(0.02 + 0.48 * 0.125)


def test_paper_schedule_ends_on_the_last_step_of_the_grid():
    # 160 epochs x 782 iterations (50k images, batch 64), prune every 2000 until 0.8 T
    schedule = CubicSchedule.build(160 * 782, 1.0, 0.05, interval=2000, end_fraction=0.8)
    assert schedule.end == 100_000  # largest multiple of 2000 not after 100_096
    steps = [t for t in range(160 * 782) if schedule.is_pruning_step(t)]
    assert steps == list(range(0, 100_001, 2000))
    assert schedule.density_at(100_000) == 0.05
    assert schedule.density_at(50_000) == pytest.approx(0.05 + 0.95 * 0.5**3)


def test_schedule_without_room_for_two_steps_is_refused():
    with pytest.raises(ValueError, match="fewer than two pruning steps"):
        CubicSchedule.build(100, 1.0, 0.1, interval=90, end_fraction=0.8)


def test_active_target_over_either_density_base():
    assert active_target(0.1234, 1000, 1000) == 123  # prunable base: round(d x N)
    # base of 1200 (200 biases/first-conv weights, always active): round(.1234 x 1200) = 148
    # parameters active in all, 148 - 200 < 0 impossible; at d = .5: 600 - 200 = 400 of 1000
    assert active_target(0.5, 1000, 1200) == 400
    with pytest.raises(ValueError):
        active_target(0.1234, 1000, 1200)


def test_authors_density_base_leaves_vgg19_at_98_percent_slightly_sparser():
    """By hand: VGG-19-BN has 20,029,514 conv/linear parameters (20,040,522 minus 2 x 5,504 BN),
    of which 5,514 biases and the 1,728 first-conv weights are never pruned. 2% of the base is
    round(400,590.28) = 400,590 active, so 400,590 - 7,242 = 393,348 prunable weights stay: a
    density of 1.9646% over the 20,022,272 prunable weights (the issue's 1.965%)."""
    model = build_backbone(spec("backbone=vgg19").backbone)
    masks = MaskSet.from_model(model, density_base="conv_linear")
    assert (masks.base_numel, masks.numel) == (20_029_514, 20_022_272)
    assert masks.target_active(0.02) == 393_348
    assert MaskSet.from_model(model, density_base="prunable").target_active(0.02) == 400_445


def test_erk_hand_solved_case_with_capping():
    # raw = sum(shape)/prod(shape): 6/8 = .75, 18/288 = .0625, 110/1000 = .11; sizes 8, 288, 1000
    # first eps = 648 / (6 + 18 + 110) -> layer 0 would get 3.6 > 1: dense.
    # re-solved: eps = (648 - 8) / (18 + 110) = 5 -> .3125 and .55
    shapes = [(4, 2), (8, 4, 3, 3), (10, 100)]
    assert erk_densities(shapes, 0.5) == pytest.approx([1.0, 0.3125, 0.55])
    assert erk_counts(shapes, 648) == [8, 90, 550]


def test_erk_without_capping_is_proportional():
    shapes = [(10, 10), (20, 30)]  # raw .2 and 50/600; 0.1 density -> eps = 70 / (20 + 50) = 1
    assert erk_densities(shapes, 0.1) == pytest.approx([0.2, 50 / 600])


@pytest.mark.parametrize("backbone", ["vgg19", "resnet50"])
@pytest.mark.parametrize("density", [0.5, 0.1, 0.05, 0.02])
def test_erk_on_real_backbones_sums_exactly_and_never_exceeds_one(backbone, density):
    model = build_backbone(spec(f"backbone={backbone}").backbone)
    shapes = [tuple(w.shape) for _, w in prunable_weights(model)]
    sizes = [math.prod(s) for s in shapes]
    densities = erk_densities(shapes, density)
    counts = erk_counts(shapes, round(density * sum(sizes)))
    assert max(densities) <= 1.0
    assert sum(d * n for d, n in zip(densities, sizes)) == pytest.approx(density * sum(sizes))
    assert sum(counts) == round(density * sum(sizes))
    assert all(0 <= c <= n for c, n in zip(counts, sizes))
    assert all(abs(c - d * n) < 1 for c, d, n in zip(counts, densities, sizes))
