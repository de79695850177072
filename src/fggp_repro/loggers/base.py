"""The run-logger interface: what a training run reports to an experiment tracker, and when.

    Logger.unavailable(options)     why it cannot start here (None: it can); starts nothing
    logger = Logger(options)        its YAML's options (a frozen dataclass, `Logger.options`)
    logger.start(RunInfo(...))      before training (on a resume too, with resumed=True)
    logger.log_epoch(step, row)     after every epoch; step is the iteration
    logger.log_pruning(step, sparsity, layer_density)    at every pruning event
    logger.finish(summary, status)  at the end: "completed", "failed" or "preempted"

Calls come per epoch and per pruning event only, in non-decreasing step order, so a logger may
do plain synchronous work. A logger imports its library inside its methods: importing its
module, or checking a config that names it, works without the library installed.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fggp_repro.options import NoOptions


@dataclass(frozen=True)
class RunInfo:
    """One training run as a tracker sees it."""

    run_id: str  # the run's config hash, e.g. "8c6f79dcd8"
    name: str  # human-readable, e.g. "vgg19/fggp/s0.95/dense/seed1-8c6f79dcd8"
    group: str  # the sweep the run belongs to (from output_root), e.g. "demo_grid"
    run_dir: Path  # the run's output directory: a logger keeps its own files and ids here
    config: dict[str, Any]  # the resolved config, nested plain data: the hyperparameters
    resumed: bool = False  # resumes from a checkpoint: continue the same logged run


class RunLogger:
    """Base class, and the logger that logs nothing (`logger=none`)."""

    options: ClassVar[type] = NoOptions

    def __init__(self, options: Any = None) -> None:
        self.opts = self.options() if options is None else options

    @classmethod
    def unavailable(cls, options: Any) -> str | None:
        """Why this logger cannot start here (a missing library, missing credentials), in one
        line that says what to do; None if it can. Cheap: imports and starts nothing."""
        return None

    def start(self, run: RunInfo) -> None:
        """Open (or, when `run.resumed`, reopen) the logged run and record its config."""

    def log_epoch(self, step: int, row: Mapping[str, float]) -> None:
        """One epoch's row at iteration `step`: epoch, iteration, lr, train_loss, train_acc,
        density, sparsity, epoch_seconds, and test_acc when the epoch was evaluated."""

    def log_pruning(self, step: int, sparsity: float, layer_density: Mapping[str, float]) -> None:
        """A pruning event at iteration `step`: the global sparsity and each layer's density,
        by parameter name ("features.4.weight")."""

    def finish(self, summary: Mapping[str, float | None], status: str) -> None:
        """Close the logged run with its final figures (those that are None are left out).
        `status` is "completed", "failed", or "preempted": stopped at a checkpoint to be
        resumed, the logged run is closed as interrupted and continued by the resume."""


class NoLogger(RunLogger):
    """`logger=none`: logs nothing (metrics.jsonl and result.json are written regardless)."""


def missing_library(module: str, logger: str, extra: str) -> str | None:
    """A one-line refusal naming the extra to install, if `module` cannot be imported."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return f"logger={logger} needs {module}, which is not installed: pip install -e '.[{extra}]'"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as one level of dotted keys: {"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}.
    Leaves stay as they are (lists included)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def as_text(value: Any) -> str:
    """A config leaf as text: strings as they are, everything else as JSON (lists, null)."""
    return value if isinstance(value, str) else json.dumps(value)


def numbers(row: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a row as floats (bools, None and text dropped)."""
    return {
        key: float(value)
        for key, value in row.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def finite(summary: Mapping[str, Any]) -> dict[str, float]:
    """The entries of a summary that are finite numbers (a failed run has None for some)."""
    return {key: value for key, value in numbers(summary).items() if math.isfinite(value)}


def sanitize(name: str, allowed: str) -> str:
    """`name` with every character outside the regex class `allowed` replaced by "_"."""
    return re.sub(f"[^{allowed}]", "_", name)


def read_id(path: Path) -> str | None:
    """The id a logger stored in the run directory, if any."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None


def write_id(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
