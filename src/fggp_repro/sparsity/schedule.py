"""The cubic sparsity schedule of Zhu & Gupta (2017), as pure functions of the iteration."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def cubic_density(
    iteration: int, initial_density: float, final_density: float, start: int, end: int
) -> float:
    """d_t = d_f + (d_i - d_f) * (1 - (t - start) / (end - start))^3, held constant outside."""
    if iteration <= start:
        return initial_density
    if iteration >= end:
        return final_density
    progress = (iteration - start) / (end - start)
    return final_density + (initial_density - final_density) * (1.0 - progress) ** 3


@dataclass(frozen=True)
class CubicSchedule:
    """Pruning steps every `interval` iterations from `start` to `end`, the last step on that grid
    not after end_fraction x total iterations; the cubic reaches the final density at `end` exactly,
    so the frozen mask always has the target sparsity."""

    initial_density: float
    final_density: float
    start: int
    end: int
    interval: int

    @classmethod
    def build(
        cls,
        total_iterations: int,
        initial_density: float,
        final_density: float,
        interval: int,
        start_iteration: int = 0,
        end_fraction: float = 0.8,
    ) -> CubicSchedule:
        window_end = math.floor(end_fraction * total_iterations)
        steps = (window_end - start_iteration) // interval
        if steps < 1:
            raise ValueError(
                f"the pruning window (iterations {start_iteration}..{window_end} of "
                f"{total_iterations}) holds fewer than two pruning steps at interval {interval}"
            )
        end = start_iteration + steps * interval
        return cls(initial_density, final_density, start_iteration, end, interval)

    def is_pruning_step(self, iteration: int) -> bool:
        return self.start <= iteration <= self.end and (iteration - self.start) % self.interval == 0

    def density_at(self, iteration: int) -> float:
        return cubic_density(
            iteration, self.initial_density, self.final_density, self.start, self.end
        )


def schedule_window(schedule: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The schedule a pruner runs on: each field of the `schedule` group, unless the pruner's
    own options set it (GraNet's window, RigL's end of updates)."""
    return {key: options.get(key, value) for key, value in schedule.items()}


def update_steps(interval: int, start: int, end: int) -> range:
    """The completed-step counts at which a drop-and-grow method (RigL, SET) updates its mask:
    the multiples of `interval` strictly after `start` and strictly before `end`."""
    return range((start // interval + 1) * interval, end, interval)


def cosine_decay(iteration: int, total: int, start_value: float, end_value: float) -> float:
    """start_value at 0, end_value at `total` and after, half a cosine in between (per iteration):
    end + (start - end) * (1 + cos(pi * t / total)) / 2."""
    if iteration >= total:
        return end_value
    return end_value + (start_value - end_value) * (1 + math.cos(math.pi * iteration / total)) / 2
