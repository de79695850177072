"""Planning before anything runs, and the account afterwards.

A command line (plus a preset's grid of sweeps) expands into jobs with Hydra's own override
grammar; each job's config is composed and checked, its directory derived from its identity,
and its status read from disk. Every invalid point is reported at once, before anything is
written. After a sweep, the summary is read back from the records on disk, so it is right
whichever launcher ran the jobs, in whichever processes or machines.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fggp_repro.cli.config import to_spec
from fggp_repro.foundations.errors import ResultsError, UserError
from fggp_repro.foundations.files import nearest_existing
from fggp_repro.foundations.spec import RunSpec
from fggp_repro.runs.identity import run_id, run_subdir
from fggp_repro.runs.records import CHECKPOINT_DIRECTORY as CHECKPOINTS
from fggp_repro.runs.records import RESULT_FILE, existing_record

#: a job's state on disk
COMPLETED, FAILED, INTERRUPTED, MISSING = "completed", "failed", "interrupted", "missing"


@dataclass
class Job:
    overrides: list[str]
    spec: RunSpec
    run_dir: Path
    status: str
    reason: str = ""

    @property
    def needs_run(self) -> bool:
        return self.status != COMPLETED or not self.spec.skip_completed


def expand(
    arguments: Sequence[str],
    grid: Sequence[dict[str, Any]],
    split: Callable[[list[str]], list[list[str]]],
) -> list[list[str]]:
    """The job overrides of a sweep: each block of a preset's grid (a mapping of keys to sweep
    values) with the command line's overrides on top, expanded by Hydra's `split` (the basic
    sweeper's cartesian product). No grid: the command line alone."""
    blocks = [[f"{key}={_sweep_value(value)}" for key, value in block.items()] for block in grid]
    jobs: list[list[str]] = []
    for block in blocks or [[]]:
        jobs += split([*block, *arguments])
    return jobs


def plan_jobs(
    job_overrides: Sequence[list[str]],
    compose: Callable[[list[str]], DictConfig],
    describe_error: Callable[[Exception, list[str]], str],
    check_environment: bool = True,
    read_status: bool = True,
) -> tuple[list[Job], list[str]]:
    """Compose and check every job; return the distinct jobs (two overrides that name the same
    run are one job) and the distinct problems, one line each. A dry run (check_environment
    false) does not look for the data or the GPU; without read_status a job's directory is not
    read (its status is `missing`)."""
    jobs: dict[Path, Job] = {}
    problems: dict[str, None] = {}
    environment_checked: set[str] = set()
    plugins_seen: dict = {}
    for overrides in job_overrides:
        try:
            spec = to_spec(compose(list(overrides)), plugins_seen)
            checks = (check_output_root, check_data, check_device, check_logger)
            checks = checks if check_environment else ()
            for check in checks:
                key = f"{check.__name__}:{_environment_key(spec)}"
                if key not in environment_checked:
                    check(spec)
                    environment_checked.add(key)
            run_dir = Path(spec.output_root) / run_subdir(spec)
            if run_dir not in jobs:
                found = status(spec, run_dir) if read_status else (MISSING, "")
                jobs[run_dir] = Job(list(overrides), spec, run_dir, *found)
        except UserError as error:
            problems[str(error)] = None
        except (HydraException, OmegaConfBaseException) as error:  # composition errors
            problems[describe_error(error, list(overrides))] = None
    return list(jobs.values()), list(problems)


def status(spec: RunSpec, run_dir: Path) -> tuple[str, str]:
    """(status, reason) of a run on disk; a corrupt or foreign record is a ResultsError."""
    record = existing_record(run_dir / RESULT_FILE, run_id(spec), spec.skip_completed)
    if record is not None and record.get("status") == COMPLETED:
        return COMPLETED, ""
    if (run_dir / CHECKPOINTS).is_dir():
        return INTERRUPTED, "has checkpoints: resumes"
    if record is not None:
        return FAILED, str(record.get("reason", record.get("status")))
    return MISSING, ""


def summarize(jobs: Sequence[Job]) -> tuple[list[str], bool]:
    """Lines describing how each launched job ended, read from disk; False if any did not
    complete."""
    lines, ok = [], True
    ended: dict[str, int] = {}
    for job in jobs:
        try:
            state, reason = status(job.spec, job.run_dir)
        except ResultsError as error:
            state, reason = FAILED, str(error)
        ended[state] = ended.get(state, 0) + 1
        if state != COMPLETED:
            ok = False
            why = reason or "no record: the job stopped before training ended (see its log)"
            lines.append(f"  {state}: {job.run_dir}: {why}")
    counts = ", ".join(f"{n} {state}" for state, n in sorted(ended.items()))
    return [f"sweep of {len(jobs)} run(s): {counts}", *lines], ok


def check_output_root(spec: RunSpec) -> None:
    """output_root must be (or be creatable as) a writable directory."""
    check_writable_directory(Path(spec.output_root), "output_root")


def check_writable_directory(directory: Path, key: str, value: str | None = None) -> None:
    """`directory` must exist as one, or be creatable: its first missing level is created and
    removed again to find out (file systems such as /proc refuse what access() allows). The
    refusal quotes `key=value`, the setting as given (`directory` by default)."""
    given = f"{key}={directory if value is None else value}"
    path = nearest_existing(directory.absolute())
    if not path.is_dir():
        raise UserError(f"{given}: {path} is a file, not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{given}: {path} is not writable")
    if path == directory.absolute():
        return
    probe = directory.absolute()
    while probe.parent != path:
        probe = probe.parent
    try:
        probe.mkdir()
    except FileExistsError:  # another process made it meanwhile
        return
    except OSError as error:
        raise UserError(f"{given}: cannot create {probe} ({error.strerror})") from None
    with contextlib.suppress(OSError):  # another process may be using it already
        probe.rmdir()


def check_data(spec: RunSpec) -> None:
    """The dataset's files must be there, or be downloaded now: once, before any job."""
    spec.data.options.ensure_available()


def check_logger(spec: RunSpec) -> None:
    """A logger that cannot start (its library missing, W&B without a login) is named in one
    line before any job starts, not as a failure of each job."""
    if spec.logger is None:
        return
    reason = spec.logger.builder.unavailable(spec.logger.options)
    if reason:  # it names the logger: "logger=wandb needs ..."
        raise UserError(reason)


def check_device(spec: RunSpec) -> None:
    from fggp_repro.runs.experiment import check_device as check

    check(spec)


def _sweep_value(value: Any) -> str:
    if isinstance(value, list | tuple) or OmegaConf.is_list(value):
        return ",".join(str(v) for v in value)
    return str(value)


def _environment_key(spec: RunSpec) -> str:
    return f"{spec.output_root}|{spec.data}|{spec.train.device}|{spec.logger}"
