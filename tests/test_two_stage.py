"""The 2x2 ablation around FGGP on hand-worked tensors: both orders, both rate policies."""

import math

import pytest
import torch
from conftest import set_layer_values, spec

from fggp_repro.foundations.spec import ScheduleSpec
from fggp_repro.pruners import FGGP, TwoStage, build_pruner
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.sparsity.schedule import cosine_decay

# flat index:    a0    a1    a2    a3    b0    b1
WEIGHTS = [0.50, -0.10, 0.30, 0.90, 0.20, -0.80]
GRADS = [0.20, -0.05, 0.01, 0.30, 0.02, 0.40]


def pruner(model, order, policy, total=100, rate=0.5):
    masks = MaskSet([("a", model.a.weight), ("b", model.b.weight)])
    return TwoStage(
        masks, order=order, rate_policy=policy, rate=rate, final_rate=0.005,
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


# Ascending |w|: a1 .1, b0 .2, a2 .3, a0 .5, b1 .8, a3 .9
# Ascending |g|: a2 .01, b0 .02, a1 .05, a0 .2, a3 .3, b1 .4
# The rate policy counts the candidates (fixed: floor(r |A|), grown to k; annealed:
# k + floor((|A| - k) r_t)); the order says which criterion picks them. Each case below is one
# where the other count would prune a different set (worked out in the comments).


def test_magnitude_first_fixed_counts_floor_r_times_active(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    p = pruner(two_linear, "magnitude_first", "fixed", rate=0.25)
    # k=1: floor(.25 x 6) = 1 candidate, the smallest |w| a1, which goes.
    # (GraNet's count 1 + floor(5 x .25) = 2 would give a1, b0 and prune b0, |g| .02 < .05.)
    assert p.select(1, 0).tolist() == [1]
    # k=3 > 1 candidate: the set grows to the 3 smallest |w| a1, b0, a2, and all go
    assert p.select(3, 0).tolist() == [1, 2, 4]
    # rate .5, k=2: 3 candidates a1, b0, a2; the 2 smallest |g| are a2 .01, b0 .02
    assert pruner(two_linear, "magnitude_first", "fixed").select(2, 0).tolist() == [2, 4]
    # gradient first on the same tensors prunes a1 and b0 (see test_selection)
    assert pruner(two_linear, "gradient_first", "fixed").select(2, 0).tolist() == [1, 4]


def test_gradient_first_annealed_counts_k_plus_the_annealed_share(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    p = pruner(two_linear, "gradient_first", "annealed")
    # t=0: r=.5, k=1 -> 1 + floor(5 x .5) = 3 candidates a2, b0, a1 -> smallest |w| is a1
    assert p.select(1, 0).tolist() == [1]
    # t=50: r=.2525 -> 1 + floor(5 x .2525) = 2 candidates a2, b0 -> smaller |w| is b0 (.2)
    # (the count floor(.2525 x 6) = 1 would keep a2 alone and prune it)
    assert p.select(1, 50).tolist() == [4]
    # t=100: r=.005 -> 1 + 0 = 1 candidate: plain smallest |g|, a2
    assert p.select(1, 100).tolist() == [2]
    # the fixed policy ignores the iteration: floor(.5 x 6) = 3 candidates -> a1
    assert pruner(two_linear, "gradient_first", "fixed").select(1, 50).tolist() == [1]


def test_magnitude_first_annealed_gives_back_fewer_over_time(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    p = pruner(two_linear, "magnitude_first", "annealed")
    # t=0: 1 + floor(5 x .5) = 3 candidates a1, b0, a2; give back a1, b0 -> prune a2
    assert p.select(1, 0).tolist() == [2]
    # t=100: 1 + floor(5 x .005) = 1 -> plain magnitude: a1
    assert p.select(1, 100).tolist() == [1]


def test_magnitude_first_edges_and_ties(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    p = pruner(two_linear, "magnitude_first", "fixed")
    assert p.select(6, 0).tolist() == list(range(6))  # k = |A|: all go
    set_layer_values(two_linear, [0.2] * 6, [0.1] * 6)
    # all tied: candidates (floor(6 x .5) = 3) are a0..a2, prune the two lowest indices
    assert p.select(2, 0).tolist() == [0, 1]


def authors_corner(w, g, active, remain, k, rate, order, policy):
    """The authors' script, transcribed independently: count by policy, pick candidates by the
    first criterion with a full sort, then the k smallest by the second among them."""
    count = max(int(rate * remain), k) if policy == "fixed" else k + int((remain - k) * rate)
    first, second = (g, w) if order == "gradient_first" else (w, g)
    ranked = active[torch.argsort(first[active].abs(), stable=True)]
    candidates = ranked[:count]
    return sorted(candidates[torch.argsort(second[candidates].abs(), stable=True)[:k]].tolist())


def cosine_rate(start, end, t, total):
    """The authors' CosineDecay (CosineAnnealingLR's closed form), stepped t times."""
    return end + (start - end) * (1 + math.cos(math.pi * t / total)) / 2


@pytest.mark.parametrize("order", ["gradient_first", "magnitude_first"])
@pytest.mark.parametrize("policy", ["fixed", "annealed"])
def test_every_corner_agrees_with_the_authors_count_on_random_cases(order, policy):
    generator = torch.Generator().manual_seed(0)
    for case in range(300):
        size = int(torch.randint(8, 60, (1,), generator=generator))
        layer = torch.nn.Linear(size, 1, bias=False)
        masks = MaskSet([("w", layer.weight)], base_numel=size + case % 7)
        masks.set_flat(torch.rand(size, generator=generator) < 0.8)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(1, size, generator=generator))
        layer.weight.grad = torch.randn(1, size, generator=generator)
        masks.apply_()
        active = masks.flat_mask().nonzero().squeeze(1)
        k = int(torch.randint(1, active.numel() + 1, (1,), generator=generator))
        start, end = sorted(torch.rand(2, generator=generator).tolist(), reverse=True)
        t = int(torch.randint(0, 101, (1,), generator=generator))
        p = TwoStage(
            masks, order=order, rate_policy=policy, rate=start, final_rate=end,
            target_density=0.1, total_iterations=100, interval=10,
        )  # fmt: skip
        rate = start if policy == "fixed" else cosine_rate(start, end, t, 100)
        expected = authors_corner(
            layer.weight.detach().view(-1), layer.weight.grad.view(-1), active,
            masks.active_over_base, k, rate, order, policy,
        )  # fmt: skip
        assert p.select(k, t).tolist() == expected, case


def test_fggp_config_is_an_instance_of_the_mechanism(two_linear):
    set_layer_values(two_linear, WEIGHTS, GRADS)
    cfg = spec("pruner=fggp")
    masks = MaskSet([("a", two_linear.a.weight), ("b", two_linear.b.weight)])
    configured = build_pruner(
        cfg.pruner, masks, target_density=0.1, total_iterations=100, initial_density=1.0,
        seed=0, schedule=ScheduleSpec(interval=10),
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
    pruner = spec(f"pruner={name}").pruner
    assert pruner.target == "fggp_repro.pruners.two_stage.TwoStage"  # one class, four names
    cfg = pruner.options
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
