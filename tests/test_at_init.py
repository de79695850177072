"""Pruning at initialisation against independent references: SNIP by hand, GraSP's Hessian-
gradient product against torch.autograd.functional.hvp, SynFlow against its closed form."""

import torch
from torch import nn
from torch.func import functional_call

from fggp_repro.pruners import SNIP, GraSP, SynFlow
from fggp_repro.pruners.grasp import hessian_gradient_product
from fggp_repro.pruners.snip import snip_scores
from fggp_repro.pruners.synflow import synflow_scores
from fggp_repro.sparsity.masks import MaskSet


def test_snip_scores_equal_hand_computed_grad_times_weight():
    torch.manual_seed(0)
    layer = nn.Linear(4, 3, bias=False)
    x, y = torch.randn(5, 4), torch.tensor([0, 2, 1, 1, 0])
    # d mean CE / dW = (softmax(x W^T) - onehot(y))^T x / n, written out without autograd
    probs = torch.softmax(x @ layer.weight.detach().T, dim=1)
    grad = (probs - nn.functional.one_hot(y, 3).float()).T @ x / 5
    expected = (grad * layer.weight.detach()).abs().reshape(-1)
    assert torch.allclose(snip_scores(layer, ["weight"], [(x, y)]), expected, atol=1e-6)
    assert layer.weight.grad is None  # scored on a copy


def test_snip_keeps_the_highest_scores_exactly():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    batch = (torch.randn(16, 6), torch.randint(3, (16,)))
    masks = MaskSet.from_model(model)
    scores = snip_scores(model, masks.names, [batch])
    SNIP(masks, target_density=0.25, total_iterations=1).at_init(model, iter([batch]))
    keep = round(0.25 * masks.numel)
    assert masks.active_count == keep
    assert torch.equal(
        masks.flat_mask().nonzero().squeeze(1), scores.argsort(descending=True)[:keep].sort().values
    )


def tiny_tanh_net():
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4))


def test_grasp_hessian_gradient_product_matches_autograd_hvp():
    model = tiny_tanh_net()
    x, y = torch.randn(7, 3), torch.randint(4, (7,))
    names = ["0.weight", "2.weight"]
    params = dict(model.named_parameters())
    weights = [params[n] for n in names]
    temperature = 3.0

    def loss(w0, w2):
        logits = functional_call(model, {**params, "0.weight": w0, "2.weight": w2}, (x,))
        return nn.functional.cross_entropy(logits / temperature, y)

    point = tuple(w.detach() for w in weights)
    gradient = torch.autograd.grad(loss(*[p.requires_grad_() for p in point]), point)
    _, expected = torch.autograd.functional.hvp(loss, point, gradient)
    ours = hessian_gradient_product(model, weights, [(x, y)], temperature)
    for a, b in zip(ours, expected):
        assert torch.allclose(a, b, atol=1e-6)


def test_grasp_prunes_the_highest_minus_w_hg():
    model = tiny_tanh_net()
    batch = (torch.randn(7, 3), torch.randint(4, (7,)))
    masks = MaskSet.from_model(model)
    weights = [dict(model.named_parameters())[n] for n in masks.names]
    hg = hessian_gradient_product(model, weights, [batch], 200.0)
    scores = torch.cat([(-w.detach() * p).reshape(-1) for w, p in zip(weights, hg)])
    GraSP(masks, target_density=0.4, total_iterations=1).at_init(model, iter([batch]))
    keep = round(0.4 * masks.numel)
    assert masks.active_count == keep
    assert torch.equal(
        masks.flat_mask().nonzero().squeeze(1), scores.argsort()[:keep].sort().values
    )


def linear_chain():
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))


def closed_form_synflow(chain):
    """For R = 1^T |W2| |W1| 1: dR/dW1[i,j] = sum_k |W2[k,i]| and dR/dW2[k,i] = sum_j |W1[i,j]|."""
    w1, w2 = chain[0].weight.detach().abs(), chain[1].weight.detach().abs()
    s1 = w1 * w2.sum(0)[:, None]
    s2 = w2 * w1.sum(1)[None, :]
    return torch.cat([s1.reshape(-1), s2.reshape(-1)])


def test_synflow_scores_match_the_closed_form_on_a_linear_chain():
    chain = linear_chain()
    expected = closed_form_synflow(chain)
    with torch.no_grad():
        for p in chain.parameters():
            p.abs_()
    scores = synflow_scores(chain, [chain[0].weight, chain[1].weight], (1, 3))
    assert torch.allclose(scores, expected)


def test_synflow_single_round_keeps_the_top_closed_form_scores():
    chain = linear_chain()
    expected = closed_form_synflow(chain)
    masks = MaskSet([("0.weight", chain[0].weight), ("1.weight", chain[1].weight)])
    SynFlow(masks, rounds=1, input_shape=(1, 3), target_density=0.5, total_iterations=1).at_init(
        chain, []
    )
    keep = round(0.5 * masks.numel)
    assert masks.active_count == keep
    top = expected.double().argsort(descending=True, stable=True)[:keep].sort().values
    assert torch.equal(masks.flat_mask().nonzero().squeeze(1), top)
    assert (chain[0].weight.detach().reshape(-1)[~masks.flat_mask()[:12]] == 0).all()


def test_synflow_iterative_rounds_reach_the_exact_target_and_keep_signs():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten())
    model.append(nn.Linear(8 * 30 * 30, 10))
    original = [model[0].weight.detach().clone(), model[4].weight.detach().clone()]
    masks = MaskSet.from_model(model, keep_first_conv_dense=False)
    one_batch = [(torch.zeros(2, 3, 32, 32), torch.zeros(2))]  # SynFlow reads its shape only
    SynFlow(masks, rounds=10, target_density=0.05, total_iterations=1).at_init(model, one_batch)
    assert masks.active_count == round(0.05 * masks.numel) == int(masks.flat_mask().sum())
    alive = [m.bool() for m in masks.masks]
    for w, w0, m in zip(masks.weights, original, alive):
        assert torch.equal(w.detach()[m], w0[m])  # surviving weights keep value and sign


def test_synflow_prunes_a_little_each_round_on_the_exponential_schedule(monkeypatch):
    """Round k (of R) scores the network with the survivors of round k - 1: after it, the
    count over the density base is round(d^(k/R) x base), d the final density (Tanaka et al.
    2020, Algorithm 1). Pruning everything in the first round (SNIP with SynFlow's score)
    would score every round after it on the final mask."""
    from fggp_repro.pruners import synflow as synflow_module
    from fggp_repro.sparsity.masks import active_target

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))
    masks = MaskSet.from_model(model, keep_first_conv_dense=False)
    alive_when_scored = []
    score = synflow_module.synflow_scores

    def counting(clone, weights, input_shape):
        alive_when_scored.append(sum(int(w.count_nonzero()) for w in weights))
        return score(clone, weights, input_shape)

    monkeypatch.setattr(synflow_module, "synflow_scores", counting)
    rounds, density = 5, 0.1
    batch = [(torch.zeros(2, 6), torch.zeros(2))]
    SynFlow(masks, rounds=rounds, target_density=density, total_iterations=1).at_init(
        model, iter(batch)
    )
    expected = [masks.numel] + [active_target(density ** (k / rounds), masks.numel, masks.numel)
                                for k in range(1, rounds)]  # fmt: skip
    assert alive_when_scored == expected  # 84, 53, 33, 21, 13 of 84
    assert masks.active_count == active_target(density, masks.numel, masks.numel)
