"""The 2x2 ablation around FGGP on hand-worked tensors: both orders, both rate policies."""

import math

import pytest
import torch
from conftest import compose, set_layer_values

from fggp_repro.masks import MaskSet
from fggp_repro.pruners import FGGP, TwoStage, build_pruner
from fggp_repro.schedule import cosine_decay

# flat index:    a0    a1    a2    a3    b0    b1
WEIGHTS = [0.50, -0.10, 0.30, 0.90, 0.20, -0.80]
GRADS = [0.20, -0.05, 0.01, 0.30, 0.02, 0.40]


def pruner(model, order, policy, total=100):
    masks = MaskSet([("a", model.a.weight), ("b", model.b.weight)])
    return TwoStage(
        masks, order=order, rate_policy=policy, rate=0.5, final_rate=0.005,
        target_density=0.1, total_iterations=total, interval=10,
    )  # fmt: skip


def test_cosine_rate_against_its_formula():
    assert cosine_decay(0, 100, 0.5, 0.005) == 0.5
    assert cosine_decay(50, 100, 0.5, 0.005) == pytest.approx(0.005 + 0.495 * 0.5)
    assert cosine_decay(25, 100, 0.5, 0.005) == pytest.approx(
        0.005 + 0.495 * (1 + math.cos(math.pi / 4)) / 2
    )
    assert cosine_decay(100, 100, 0.5, 0.005) == 0.005
    assert cosine_decay(130, 100, 0.5, 0.005) == 0.005


def test_magnitude_first_fixed(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    p = pruner(two_linear, "magnitude_first", "fixed")
    # k=2, a = floor((6-2) x 0.5) = 2: candidates = 4 smallest |w| = a1 .1, b0 .2, a2 .3, a0 .5;
    # give back the 2 of largest |g| (a0 .2, a1 .05) -> prune b0 and a2
    assert sorted(p.select(2, 0).tolist()) == [2, 4]
    # gradient first on the same tensors prunes a1 and b0 (see test_selection)
    assert sorted(pruner(two_linear, "gradient_first", "fixed").select(2, 0).tolist()) == [1, 4]


def test_gradient_first_annealed_uses_the_rate_of_the_iteration(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    p = pruner(two_linear, "gradient_first", "annealed")
    # t=0: r=0.5 -> 3 candidates a2, b0, a1 -> smallest |w| is a1
    assert p.select(1, 0).tolist() == [1]
    # t=50: r=0.2525 -> floor(1.515) = 1 candidate, a2 -> a2 goes
    assert p.select(1, 50).tolist() == [2]
    # the fixed policy ignores the iteration
    assert pruner(two_linear, "gradient_first", "fixed").select(1, 50).tolist() == [1]


def test_magnitude_first_annealed_gives_back_fewer_over_time(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    p = pruner(two_linear, "magnitude_first", "annealed")
    # t=0: a = floor(5 x 0.5) = 2 -> candidates a1, b0, a2; give back a1, b0 -> prune a2
    assert p.select(1, 0).tolist() == [2]
    # t=100: a = floor(5 x 0.005) = 0 -> plain magnitude: a1
    assert p.select(1, 100).tolist() == [1]


def test_magnitude_first_edges_and_ties(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    p = pruner(two_linear, "magnitude_first", "fixed")
    assert sorted(p.select(6, 0).tolist()) == list(range(6))  # k = |A|: a = 0, all go
    set_layer_values(two_linear, [0.2] * 6, [0.1] * 6)
    # all tied: candidates (k + floor(4 x .5) = 4) are a0..a3, prune the two lowest indices
    assert p.select(2, 0).tolist() == [0, 1]


def test_fggp_config_is_an_instance_of_the_mechanism(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    cfg = compose("pruner=fggp")
    masks = MaskSet([("a", two_linear.a.weight), ("b", two_linear.b.weight)])
    configured = build_pruner(
        cfg.pruner, masks, target_density=0.1, total_iterations=100, initial_density=1.0,
        seed=0, schedule={"interval": 10},
    )  # fmt: skip
    published = FGGP(masks, rate=0.5, target_density=0.1, total_iterations=100, interval=10)
    for k in range(1, 6):
        assert torch.equal(configured.select(k, 0), published.select(k, 0))


@pytest.mark.parametrize(
    ("name", "order", "policy"),
    [
        ("fggp", "gradient_first", "fixed"),
        ("fggp_annealed", "gradient_first", "annealed"),
        ("mfgn", "magnitude_first", "fixed"),
        ("mfgn_annealed", "magnitude_first", "annealed"),
    ],
)
def test_the_four_named_corners(name, order, policy):
    cfg = compose(f"pruner={name}").pruner
    assert (str(cfg.order), str(cfg.rate_policy), cfg.rate) == (order, policy, 0.5)
    assert cfg.final_rate == 0.005


def test_candidate_count_is_taken_over_the_density_base(two_linear):
    """The authors' int(r x remain) counts every conv/linear parameter still active."""
    set_layer_values(two_linear, WEIGHTS, GRADS)

    def select(base_numel):
        layers = [("a", two_linear.a.weight), ("b", two_linear.b.weight)]
        p = TwoStage(
            MaskSet(layers, base_numel=base_numel), order="gradient_first",
            rate_policy="fixed", rate=0.25, target_density=0.5, total_iterations=100,
            interval=10,
        )  # fmt: skip
        return p.select(1, 0).tolist()

    # 6 prunable weights: floor(.25 x 6) = 1 candidate, a2 (|g| .01), which goes
    assert select(6) == [2]
    # 4 more always-active parameters in the base: floor(.25 x 10) = 2 candidates, a2 and b0
    # (|g| .02); the smaller |w| of the two is b0 (.2 against .3)
    assert select(10) == [4]
