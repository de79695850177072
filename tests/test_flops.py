"""FLOPs against hand counts: torch.utils.flop_counter on layers whose cost is known, and the
training total of a run with one pruning event summed by hand."""

import pytest
from torch import nn

from fggp_repro.training.flops import layer_forward_flops, network_flops, training_flops


def test_dense_forward_flops_per_layer_by_hand():
    # Linear(4 -> 3): 2 x 4 x 3 = 24 per image; Conv2d(1 -> 2, 3x3) on 5x5 -> 3x3: 2 x 9 x 2 x 9
    model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.Flatten(), nn.Linear(18, 3))
    assert layer_forward_flops(model, (1, 1, 5, 5)) == {"0": 2 * 9 * 2 * 9, "2": 2 * 18 * 3}


def test_training_flops_of_a_run_with_one_pruning_event_by_hand():
    dense = {"a": 100, "b": 300}
    events = [(0, {}), (10, {"a": 0.5, "b": 0.1})]  # dense for 10 steps, then 80 FLOPs
    assert network_flops(dense, events[1][1]) == 80
    # 30 iterations of 2 images: 3 x (400 x 10 + 80 x 20) x 2 images
    assert training_flops(dense, events, 30, 60, False) == 3 * (400 * 10 + 80 * 20) * 2
    # a dense-gradient regrower pays (400 - 80) x 2 images more at its update step 9 -> 400 dense
    extra = training_flops(dense, events, 30, 60, True, [9, 19])
    assert extra == pytest.approx(3 * (400 * 10 + 80 * 20) * 2 + (400 - 400) * 2 + (400 - 80) * 2)
