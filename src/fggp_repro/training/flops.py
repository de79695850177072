"""FLOPs of a sparse network and of its whole training run, in RigL's convention (Evci et al.
2020): only Conv2d and Linear layers count; a layer of density d costs d times its dense forward
FLOPs; a training step costs three forward passes (the backward pass twice the sparse forward),
and at the update steps of methods that regrow by the dense gradient (GraNet, RigL) the
weight-gradient half of the backward pass is dense."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class MaskHistory:
    """The network's active weights per prunable layer at the start and after every step at
    which the mask may have changed, as (first iteration, counts): what training FLOPs are
    counted from. It listens to the trainer's mask-change events; a checkpoint keeps it."""

    def __init__(self) -> None:
        self.events: list[tuple[int, list[int]]] = []

    def record(self, iteration: int, counts: Sequence[int]) -> None:
        self.events.append((iteration, list(counts)))

    def state_dict(self) -> list[tuple[int, list[int]]]:
        return [(t, list(counts)) for t, counts in self.events]

    def load_state_dict(self, events: Sequence[tuple[int, Sequence[int]]]) -> None:
        self.events = [(t, list(counts)) for t, counts in events]


def layer_forward_flops(model: nn.Module, input_shape: Sequence[int]) -> dict:
    """Dense forward FLOPs of one image of `input_shape` (1, C, H, W) through each Conv2d and
    Linear layer, by module name, counted by torch.utils.flop_counter (one forward pass of a
    blank image, in eval mode)."""
    prefix = type(model).__name__
    layers = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(*input_shape, device=device))
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    return {name: int(sum(counts.get(f"{prefix}.{name}", {}).values())) for name in layers}


def network_flops(dense: dict[str, int], densities: dict[str, float]) -> float:
    """Forward FLOPs per image with the given per-layer densities (absent layers are dense)."""
    return sum(flops * densities.get(name, 1.0) for name, flops in dense.items())


def training_flops(
    dense: dict[str, int],
    events: Sequence[tuple[int, dict[str, float]]],
    iterations: int,
    images: int,
    reads_dense_gradient: bool,
    update_steps: Sequence[int] = (),
) -> float:
    """FLOPs of a whole run: each iteration 3 x the forward FLOPs of the network of that moment
    times its images; `events` are (iteration, per-layer densities from then on), the first at 0;
    at each of `update_steps`, one minibatch's dense weight gradient replaces the sparse one."""
    per_image = images / iterations
    total = 0.0
    bounds = [*(t for t, _ in events[1:]), iterations]
    for (start, densities), end in zip(events, bounds, strict=True):
        total += 3 * network_flops(dense, densities) * (end - start) * per_image
    if reads_dense_gradient:
        full = sum(dense.values())
        for step in update_steps:
            densities = next(d for t, d in reversed(events) if t <= step)
            total += (full - network_flops(dense, densities)) * per_image
    return total
