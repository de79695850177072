"""Weights & Biases: one W&B run per training run, grouped by the sweep (`group`).

The W&B run id is the run's config hash plus a random suffix (`8c6f79dcd8-k3x9q2`), kept in
`<run dir>/wandb_run_id`: a run resumed from its checkpoint continues that W&B run
(resume="allow"), while a fresh start of the same config (a rerun, or another output_root)
gets a new one instead of appending to a finished history. W&B's own files go to
`<run dir>/wandb/` unless WANDB_DIR or `dir` says otherwise.

`mode` null follows WANDB_MODE (online when unset); offline runs are uploaded later with
`wandb sync <run dir>/wandb/offline-run-*` (the sessions of a resumed run share its id).
Metric names keep to W&B's sortable characters: letters, digits, "_" and "/" for sections, so
the density of `features.4.weight` is `layer_density/features_4_weight`.
"""

from __future__ import annotations

import netrc
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fggp_repro.foundations.options import Choice
from fggp_repro.loggers.base import (
    RunInfo,
    RunLogger,
    finite,
    missing_library,
    numbers,
    pruning_metrics,
    read_id,
    sanitize,
    write_id,
)

ID_FILE = "wandb_run_id"
NAME_CHARACTERS = "A-Za-z0-9_/"
OFFLINE_MODES = ("offline", "dryrun", "disabled")


class WandbMode(Choice):
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass(frozen=True)
class WandbOptions:
    project: str = "fggp-repro"
    entity: str | None = None  # None: the account's default entity
    mode: WandbMode | None = None  # None: $WANDB_MODE, else online
    tags: list[str] = field(default_factory=list)
    dir: str | None = None  # None: $WANDB_DIR, else the run directory


class WandbLogger(RunLogger):
    options = WandbOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.run: Any = None  # the wandb Run

    @classmethod
    def unavailable(cls, options: Any) -> str | None:
        missing = missing_library("wandb", "wandb", "wandb")
        if missing is not None or _mode(options) in OFFLINE_MODES or _has_credentials():
            return missing
        return (
            "logger=wandb logs online but finds no W&B credentials here: run `wandb login` "
            "(or set WANDB_API_KEY), or log offline with logger.mode=offline or "
            "WANDB_MODE=offline and upload later with `wandb sync`"
        )

    def start(self, run: RunInfo) -> None:
        import wandb

        id_file = run.run_dir / ID_FILE
        wandb_id = read_id(id_file) if run.resumed else None
        if wandb_id is None:
            wandb_id = f"{run.run_id}-{_suffix()}"
            write_id(id_file, wandb_id)
        settings: dict[str, Any] = {}
        if self.opts.dir is not None:
            settings["dir"] = self.opts.dir
        elif not os.environ.get("WANDB_DIR"):
            settings["dir"] = str(run.run_dir)
        if "dir" in settings:
            Path(settings["dir"]).mkdir(parents=True, exist_ok=True)
        if self.opts.mode is not None:
            settings["mode"] = str(self.opts.mode)
        self.run = wandb.init(
            project=self.opts.project,
            entity=self.opts.entity,
            group=run.group,
            name=run.name,
            id=wandb_id,
            resume="allow",
            tags=list(self.opts.tags) or None,
            config={**run.config, "run_id": run.run_id},
            reinit="create_new",
            **settings,
        )

    def log_epoch(self, step: int, row: Mapping[str, float]) -> None:
        self._log(step, {_name(key): value for key, value in numbers(row).items()})

    def log_pruning(self, step: int, sparsity: float, layer_density: Mapping[str, float]) -> None:
        self._log(step, pruning_metrics(sparsity, layer_density, _name))

    def finish(self, summary: Mapping[str, float | None], status: str) -> None:
        if self.run is None:
            return
        for key, value in finite(summary).items():
            self.run.summary[_name(key)] = value
        self.run.summary["status"] = status
        if status == "preempted":
            self.run.mark_preempting()
        self.run.finish(exit_code=0 if status == "completed" else 1)
        self.run = None

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        if self.run is None:
            raise RuntimeError("WandbLogger.start() was not called")
        # W&B keeps no step below its current one: steps replayed after a resume were logged
        if step >= self.run.step:
            self.run.log(metrics, step=step)


def _mode(options: Any) -> str:
    mode = getattr(options, "mode", None)
    return str(mode) if mode is not None else os.environ.get("WANDB_MODE", "online").lower()


def _has_credentials() -> bool:
    """An API key in the environment, or one in the netrc file for the W&B host (where
    `wandb login` puts it)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).netloc
    path = os.environ.get("NETRC") or Path("~/.netrc").expanduser()
    try:
        return bool(host) and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _suffix() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))


def _name(key: str) -> str:
    return sanitize(key, NAME_CHARACTERS)
