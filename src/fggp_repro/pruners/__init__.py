"""Pruners. Each one is a module holding its class, options and traits; the YAML files in
conf/pruner/ name a class by `_target_` and set its options, so a variant under a new name is
one YAML file and nothing here lists them. Pruners that act on a schedule also get the
`schedule` group's fields, which a pruner's own options may override (GraNet's window, RigL's
end of updates)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from fggp_repro.foundations.spec import PluginSpec, ScheduleSpec
from fggp_repro.pruners.base import Pruner, PrunerTraits
from fggp_repro.pruners.dense import Dense
from fggp_repro.pruners.gmp import GMP
from fggp_repro.pruners.gradual import GradualPruner
from fggp_repro.pruners.granet import GraNet
from fggp_repro.pruners.grasp import GraSP
from fggp_repro.pruners.rigl import RigL
from fggp_repro.pruners.set import SET
from fggp_repro.pruners.snip import SNIP
from fggp_repro.pruners.synflow import SynFlow
from fggp_repro.pruners.two_stage import FGGP, TwoStage
from fggp_repro.sparsity.schedule import schedule_window

if TYPE_CHECKING:
    from fggp_repro.sparsity.masks import MaskSet

__all__ = [
    "FGGP", "GMP", "SET", "SNIP", "Dense", "GraNet", "GraSP", "GradualPruner", "Pruner",
    "PrunerTraits", "RigL", "SynFlow", "TwoStage", "build_pruner",
]  # fmt: skip


def build_pruner(
    spec: PluginSpec,
    masks: MaskSet,
    *,
    target_density: float,
    total_iterations: int,
    initial_density: float,
    seed: int,
    schedule: ScheduleSpec | None = None,
) -> Pruner:
    """The pruner a pruner spec names, with its options (and the schedule, if it uses one)."""
    cls = spec.builder
    options = asdict(spec.options)
    uses_schedule = schedule is not None and cls.traits.uses_schedule
    params = {**(schedule_window(asdict(schedule), options) if uses_schedule else {}), **options}
    return cls(
        masks,
        target_density=target_density,
        total_iterations=total_iterations,
        initial_density=initial_density,
        seed=seed,
        **params,
    )
