"""Pruner registry: the `name` of a pruner config picks the class; its other fields are the
class's keyword arguments."""

from __future__ import annotations

from typing import Any

from fggp_repro.errors import ConfigError
from fggp_repro.masks import MaskSet
from fggp_repro.pruners.base import Pruner
from fggp_repro.pruners.dense import Dense
from fggp_repro.pruners.fggp import FGGP
from fggp_repro.pruners.gmp import GMP
from fggp_repro.pruners.gradual import GradualPruner

PRUNERS: dict[str, type[Pruner]] = {cls.name: cls for cls in (Dense, GMP, FGGP)}

__all__ = ["FGGP", "GMP", "PRUNERS", "Dense", "GradualPruner", "Pruner", "build_pruner"]


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
    """Instantiate the pruner a `pruner` config names; gradual pruners also get the schedule."""
    if cfg.name not in PRUNERS:
        raise ConfigError(f"unknown pruner '{cfg.name}' (known: {', '.join(sorted(PRUNERS))})")
    params = {k: v for k, v in dict(cfg).items() if k != "name"}
    if issubclass(PRUNERS[cfg.name], GradualPruner) and schedule is not None:
        params.update(dict(schedule))
    return PRUNERS[cfg.name](
        masks,
        target_density=target_density,
        total_iterations=total_iterations,
        initial_density=initial_density,
        seed=seed,
        **params,
    )
