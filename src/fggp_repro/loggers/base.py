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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from traceback import format_exc
from typing import Any, ClassVar

from fggp_repro.foundations.options import NoOptions

#: the record's figures a tracker gets at the end of a run
HEADLINE = ("final_test_acc", "achieved_sparsity", "inference_flops_fraction",
            "training_flops_fraction")  # fmt: skip


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

    @classmethod
    def prepare(cls, options: Any, group: str) -> None:
        """Once per sweep, in the sweeping process, before its jobs start (in parallel, maybe):
        create what they would otherwise race to create (MLflow's store and experiment)."""

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


class FailSafe:
    """A tracker behind which training goes on whatever the tracker does: its first failure
    (a server out of reach, a full disk) is a warning with its traceback, and nothing more is
    sent to it; `finish` runs at most once. The run's own files are what count."""

    def __init__(self, logger: RunLogger | None, warn: Callable[[str], None]) -> None:
        self.logger = logger  # None: nothing is logged
        self.warn = warn

    def call(self, method: str, *args: Any) -> None:
        if self.logger is None:
            return
        try:
            getattr(self.logger, method)(*args)
        except Exception:  # a tracking library's errors share no narrower type
            name = type(self.logger).__name__
            self.warn(f"{name}.{method} failed; the run goes on without it:\n{format_exc()}")
            self.logger = None
        if method == "finish":
            self.logger = None


class NoLogger(RunLogger):
    """`logger=none`: logs nothing (metrics.jsonl and result.json are written regardless)."""


def group_of(output_root: str) -> str:
    """The name a sweep's runs are grouped under: its output_root's (`demo_grid`, `paper`)."""
    return Path(output_root).resolve().name


def missing_library(module: str, logger: str, extra: str) -> str | None:
    """A one-line refusal naming the extra to install, if `module` cannot be imported."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return f"logger={logger} needs {module}, which is not installed: pip install -e '.[{extra}]'"


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


def pruning_metrics(
    sparsity: float, layer_density: Mapping[str, float], name: Callable[[str], str] = str
) -> dict[str, float]:
    """A pruning event as metrics: `pruning/sparsity` and `layer_density/<parameter>`, the
    parameter written as the tracker's `name` allows."""
    metrics = {"pruning/sparsity": float(sparsity)}
    for parameter, density in layer_density.items():
        metrics[f"layer_density/{name(parameter)}"] = float(density)
    return metrics


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
