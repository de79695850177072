"""GMP masks equal PyTorch's own global L1 pruning (torch.nn.utils.prune.global_unstructured)."""

import copy

import torch
import torch.nn.utils.prune as tprune
from conftest import SmallConvNet

from fggp_repro.pruners import GMP
from fggp_repro.sparsity.masks import MaskSet, prunable_weights


def reference_masks(model, amounts):
    """Apply torch's global L1 pruning once per amount (pruning among the survivors each time)."""
    modules = [
        (m, "weight") for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    for amount in amounts:
        tprune.global_unstructured(modules, pruning_method=tprune.L1Unstructured, amount=amount)
    return torch.cat([m.weight_mask.reshape(-1) for m, _ in modules]).bool()


def test_gmp_matches_global_unstructured_over_two_steps():
    torch.manual_seed(0)
    model = SmallConvNet()
    reference = reference_masks(copy.deepcopy(model), [100, 150])
    masks = MaskSet(prunable_weights(model, keep_first_conv_dense=False))
    gmp = GMP(masks, target_density=0.1, total_iterations=100, interval=10)
    masks.prune(gmp.select(100, 0))
    masks.prune(gmp.select(150, 0))
    assert torch.equal(masks.flat_mask(), reference)
    assert masks.active_count == masks.numel - 250


def test_gmp_schedule_step_prunes_exactly_to_the_cubic_density():
    torch.manual_seed(1)
    model = SmallConvNet()
    masks = MaskSet(prunable_weights(model, keep_first_conv_dense=False))
    gmp = GMP(masks, target_density=0.2, total_iterations=100, interval=10, end_fraction=0.8)
    for t in range(0, 81):
        gmp.after_backward(t)
        if t == 40:  # halfway through the window [0, 80]
            expected = round((0.2 + 0.8 * 0.5**3) * masks.numel)
            assert masks.active_count == expected == int(masks.flat_mask().sum())
    assert masks.active_count == round(0.2 * masks.numel)
