"""Pruner registry: the `name` of a pruner config picks the class; its other fields are the
class's keyword arguments. Pruners that act on a schedule also get the `schedule` group's
fields, which a pruner config may override (GraNet's own window, RigL's end of updates)."""

from __future__ import annotations

from typing import Any

from fggp_repro.errors import ConfigError
from fggp_repro.masks import MaskSet
from fggp_repro.pruners.base import Pruner
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

PRUNERS: dict[str, type[Pruner]] = {
    "dense": Dense,
    "gmp": GMP,
    "fggp": TwoStage,
    "fggp_annealed": TwoStage,
    "mfgn": TwoStage,
    "mfgn_annealed": TwoStage,
    "granet": GraNet,
    "rigl": RigL,
    "set": SET,
    "snip": SNIP,
    "grasp": GraSP,
    "synflow": SynFlow,
}
SCHEDULED = (GradualPruner, RigL)

__all__ = [
    "FGGP", "GMP", "PRUNERS", "SET", "SNIP", "Dense", "GraNet", "GraSP", "GradualPruner",
    "Pruner", "RigL", "SynFlow", "TwoStage", "build_pruner",
]  # fmt: skip


def build_pruner(
    cfg: Any,
    masks: MaskSet,
    *,
    target_density: float,
    total_iterations: int,
    initial_density: float,
    seed: int,
    schedule: Any = None,
) -> Pruner:
    """Instantiate the pruner a `pruner` config names."""
    if cfg.name not in PRUNERS:
        raise ConfigError(f"unknown pruner '{cfg.name}' (known: {', '.join(sorted(PRUNERS))})")
    cls = PRUNERS[cfg.name]
    params = dict(schedule) if schedule is not None and issubclass(cls, SCHEDULED) else {}
    params.update((k, v) for k, v in dict(cfg).items() if k != "name")
    return cls(
        masks,
        target_density=target_density,
        total_iterations=total_iterations,
        initial_density=initial_density,
        seed=seed,
        **params,
    )
