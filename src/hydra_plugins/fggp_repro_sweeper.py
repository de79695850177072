"""fggp-repro's Hydra sweeper: Hydra's basic sweep grammar, planned before anything launches.

It hands the jobs to whichever launcher is configured (basic, joblib, submitit), so it schedules
nothing itself. What it adds to the basic sweeper:
  - a preset's `grid`, a list of sweeps launched as one (the paper grid is two products);
  - every job composed and checked first, all problems reported at once and nothing launched;
  - jobs naming the same run (axes a pruner ignores) launched once; completed runs not at all;
  - `dry_run`: the plan and its status, launching nothing;
  - a summary read back from the records on disk, and a non-zero exit when any job failed.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan executes this file outside
# the import system, where dataclasses cannot resolve string annotations.
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


def shipped_backbones() -> dict[str, float | None]:
    """A key per backbone YAML of the package (none set), so that
    `hydra.sweeper.epoch_seconds.<backbone>=<s>` needs no `+`; a backbone of your own config
    directory takes `+hydra.sweeper.epoch_seconds.<backbone>=<s>`."""
    import fggp_repro

    conf = Path(fggp_repro.__file__).resolve().parent / "conf" / "backbone"
    return dict.fromkeys(sorted(p.stem for p in conf.glob("*.yaml")))


@dataclass
class PlannedSweeperConf:
    _target_: str = "hydra_plugins.fggp_repro_sweeper.PlannedSweeper"
    grid: list[Any] = field(default_factory=list)
    dry_run: bool = False
    #: seconds one epoch of each backbone takes on your device, for the dry run's estimate
    epoch_seconds: dict[str, float | None] = field(default_factory=lambda: shipped_backbones())


ConfigStore.instance().store(
    group="hydra/sweeper", name="planned", node=PlannedSweeperConf, provider="fggp-repro"
)


class PlannedSweeper(Sweeper):
    def __init__(
        self,
        grid: list[Any] | None = None,
        dry_run: bool = False,
        epoch_seconds: dict[str, float | None] | None = None,
    ) -> None:
        self.grid = list(grid or [])
        self.dry_run = dry_run
        self.epoch_seconds = dict(epoch_seconds or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        """Plan, launch, account and tabulate (fggp_repro.cli.sweep); a sweep that was refused (2)
        or had a failed job (1) ends the process with that code once its tables are written."""
        from fggp_repro.cli.sweep import run_planned_sweep

        assert self.hydra_context is not None and self.config is not None
        exit_code = run_planned_sweep(self, arguments)
        if exit_code:
            sys.exit(exit_code)
        return []
