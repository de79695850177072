"""How long the runs of a plan will take, from what has been measured: seconds per epoch typed by
the user, else completed runs of the same kind under the output root, else a benchmark report of
this device (`scripts/benchmark.py` writes results/bench/<device>.json). Every estimate names
its source; a kind of run with none of them is named, so the user knows which figure to type."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fggp_repro.foundations.errors import ResultsError
from fggp_repro.foundations.spec import RunSpec
from fggp_repro.runs.records import RESULT_FILE, read_record
from fggp_repro.runs.validation import train_set_size

BENCH_DIR = Path("results/bench")


@dataclass(frozen=True)
class RunKind:
    """What an epoch's time depends on, beyond the code: runs of one kind take the same time."""

    backbone: str
    dataset: str
    device_name: str
    bf16: bool
    batch_size: int

    def __str__(self) -> str:
        precision = "bf16" if self.bf16 else "fp32"
        return (
            f"{self.backbone} on {self.dataset}, {self.device_name}, {precision}, "
            f"batch {self.batch_size}"
        )


@dataclass(frozen=True)
class EpochTime:
    seconds: float
    source: str


def kind_of_record(record: Mapping[str, Any]) -> RunKind:
    train = record["config"]["train"]
    return RunKind(
        record["backbone"], record["dataset"], record["device_name"], bool(train["bf16"]),
        int(train["batch_size"]),
    )  # fmt: skip


def kind_of_job(spec: RunSpec, device_name: str) -> RunKind:
    return RunKind(
        spec.backbone.name, spec.data.name, device_name, spec.train.bf16, spec.train.batch_size
    )


def completed_records(root: Path) -> list[dict[str, Any]]:
    """The completed records under `root` that say how fast they trained."""
    found = []
    for path in sorted(root.rglob(RESULT_FILE)) if root.is_dir() else []:
        try:
            record = read_record(path)
        except ResultsError:
            continue
        if record.get("status") != "completed":
            continue
        rate = record.get("images_per_second")
        if isinstance(rate, int | float) and math.isfinite(rate) and rate > 0:
            found.append(record)
    return found


@dataclass(frozen=True)
class Rate:
    """Training images per second, and where that figure comes from."""

    images_per_second: float
    source: str


def from_records(records: Iterable[Mapping[str, Any]], roots: str) -> dict[RunKind, Rate]:
    """The median training rate of each kind of completed run (an epoch's time then follows
    from the images of each job's own epoch, whatever size the measured runs had)."""
    per_kind: dict[RunKind, list[float]] = {}
    for record in records:
        try:
            kind = kind_of_record(record)
        except (KeyError, TypeError, ValueError):
            continue
        per_kind.setdefault(kind, []).append(record["images_per_second"])
    return {
        kind: Rate(
            statistics.median(rates), f"median of {len(rates)} completed run(s) under {roots}"
        )
        for kind, rates in per_kind.items()
    }


def bench_report(device_name: str, bench_dir: Path = BENCH_DIR) -> tuple[dict, Path] | None:
    """This device's benchmark report, if there is one (named as scripts/benchmark.py names it)."""
    path = bench_dir / f"{slug(device_name)}.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("device") != device_name:
        return None
    return report, path


def from_bench(report: Mapping[str, Any], path: Path, spec: RunSpec) -> Rate | None:
    """The benchmark's rate of the trainer's default step path for this backbone and precision
    (`default` or `default_bf16`: a run's own path with train.compile=auto), if it has one."""
    variant = "default_bf16" if spec.train.bf16 else "default"
    try:
        rate = float(report["backbones"][spec.backbone.name]["images_per_second"][variant])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(rate) and rate > 0):
        return None
    return Rate(rate, f"{path} ({variant} at batch {report.get('batch_size')})")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def epoch_time(
    spec: RunSpec,
    device_name: str,
    typed: Mapping[str, float | None],
    measured: Mapping[RunKind, Rate],
    bench: tuple[dict, Path] | None,
) -> EpochTime | None:
    """The first of: typed by the user for this backbone, the rate measured on runs of this
    kind, the benchmark of this device; None if none applies. Training only: evaluation,
    checkpoints and start-up are not counted."""
    seconds = typed.get(spec.backbone.name)
    if seconds is not None:
        return EpochTime(seconds, f"hydra.sweeper.epoch_seconds.{spec.backbone.name}")
    rate = measured.get(kind_of_job(spec, device_name))
    if rate is None and bench is not None:
        rate = from_bench(*bench, spec)
    if rate is None:
        return None
    return EpochTime(train_set_size(spec.data) / rate.images_per_second, rate.source)
