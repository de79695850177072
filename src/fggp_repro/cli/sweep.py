"""The planned sweep behind `fggp-repro --multirun` (the `planned` Hydra sweeper): expand, check
every job, launch what is missing through the configured launcher, account for it, and write the
tables of everything under the sweep's root. The exit code is returned, never kept aside."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from fggp_repro.cli import PROG
from fggp_repro.cli.config import describe_error, job_composer
from fggp_repro.cli.jobs import Job, expand, plan_jobs, summarize
from fggp_repro.foundations.errors import first_line
from fggp_repro.foundations.files import first_missing, remove_empty_directories

log = logging.getLogger("fggp-repro")


def run_planned_sweep(sweeper: Any, arguments: list[str]) -> int:
    """Plan, check, launch and summarise; return the process exit code (0, 1 or 2)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)

    def split(overrides: list[str]) -> list[list[str]]:
        return BasicSweeper.split_arguments(parser.parse_overrides(overrides), None)[0]

    try:
        job_overrides = expand(arguments, sweeper.grid, split)
    except (HydraException, OmegaConfBaseException) as error:
        return _refuse([describe_error(error)])
    jobs, problems = plan_jobs(
        job_overrides, job_composer(), describe_error, check_environment=not sweeper.dry_run
    )
    if problems:
        return _refuse(problems)
    todo = [job for job in jobs if job.needs_run]
    if sweeper.dry_run:
        print_plan(jobs, sweeper.epoch_seconds)
        return 0
    done = len(jobs) - len(todo)
    log.info("sweep of %d run(s): %d to run, %d already completed", len(jobs), len(todo), done)
    if todo:
        prepare_loggers(todo)
        root = Path(sweeper.config.hydra.sweep.dir)
        created = first_missing(root)
        try:
            derived = derives_subdir(sweeper.config)
            launched = [with_subdir(job, derived) for job in todo]
            sweeper.launcher.launch(launched, initial_job_idx=0)
        except Exception as error:  # the launcher itself (its settings, its cluster): one line
            if created is not None:
                remove_empty_directories(root, created)
            reason = f"{type(error).__name__}: {first_line(error)}"
            return _refuse([f"the launcher could not run the jobs: {reason} (check the "
                            "hydra.launcher.* settings)"])  # fmt: skip
    lines, ok = summarize(jobs)
    print("\n".join(lines), file=sys.stderr if not ok else sys.stdout)
    for line in missing_lines(jobs):
        log.warning(line)
    write_tables(Path(sweeper.config.hydra.sweep.dir))
    return 0 if ok else 1


def with_subdir(job: Job, derived: bool) -> list[str]:
    """A job's overrides with its run directory below the sweep's, as planning derived it, so
    that Hydra need not derive it again (the ${run_subdir:} resolver builds a whole spec); as
    they are where the sweep's subdirectory is not the shipped one (`derived` false)."""
    from fggp_repro.cli.config import hydra_quoted
    from fggp_repro.runs.identity import run_subdir

    subdir = run_subdir(job.spec)
    if not derived or "$" in subdir:
        return job.overrides
    return [*job.overrides, f"hydra.sweep.subdir={hydra_quoted(subdir)}"]


def derives_subdir(config: Any) -> bool:
    """Whether the sweep's `hydra.sweep.subdir` is the shipped ${run_subdir:}, set by no
    command line or config file."""
    from omegaconf import OmegaConf

    from fggp_repro.cli.config import SHIPPED_SWEEP_SUBDIR

    try:
        sweep = OmegaConf.to_container(config.hydra.sweep, resolve=False)
    except (AttributeError, ValueError):
        return False
    return isinstance(sweep, dict) and sweep.get("subdir") == SHIPPED_SWEEP_SUBDIR


def write_tables(root: Path) -> None:
    """The paper table, rankings, statistics and plots of every record under the sweep's root
    (this sweep's runs and any earlier ones), into <root>/tables/."""
    from fggp_repro.reporting.collect import load_records, report, significance_line, write_report

    if not root.is_dir():
        return
    records = load_records(root, warn=log.warning)
    if records.empty or not (records["status"] == "completed").any():
        return
    result = report(records, ["markdown", "latex", "csv"], None, None)
    for line in result["warnings"]:
        log.warning(line)
    write_report(result, root / "tables")
    log.info("tables of %s written to %s", root, root / "tables")
    print(result["texts"]["paper_table.md"])
    print(result["texts"]["rankings.md"])
    print(significance_line(result["stats"]))


def missing_lines(jobs: list[Job]) -> list[str]:
    """A line per completed run whose metrics or model file was deleted since: it is kept, not
    rerun, and the figures lack what the file held."""
    from fggp_repro.runs.records import missing_files

    return [
        f"completed, but its {' and '.join(missing)} missing: {job.run_dir} (its figures lack "
        "them; skip_completed=false reruns it)"
        for job in jobs
        if job.status == "completed" and (missing := missing_files(job.run_dir))
    ]


def print_plan(jobs: list[Job], epoch_seconds: dict[str, float | None]) -> None:
    """Every job with its status and directory, the counts, and the time the missing ones need;
    completed runs with a file gone, and data that are not here, named."""
    for job in jobs:
        state = "completed" if not job.needs_run else job.status
        print(f"{state:<11} {job.run_dir}  [{' '.join(job.overrides)}]")
    for line in missing_lines(jobs):
        print(line)
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    todo = [job for job in jobs if job.needs_run]
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print(f"{len(jobs)} run(s): {summary}; {len(todo)} would run")
    for line in missing_data(todo):
        print(line)
    print_estimate(todo, epoch_seconds)


def missing_data(todo: list[Job]) -> list[str]:
    """A line per dataset the runs to do need and this machine lacks (nothing downloaded)."""
    import dataclasses

    from fggp_repro.foundations.errors import DataError

    lines, seen = [], set()
    for job in todo:
        options = job.spec.data.options
        if repr(options) in seen:
            continue
        seen.add(repr(options))
        if any(f.name == "download" for f in dataclasses.fields(options)):
            options = dataclasses.replace(options, download=False)
        try:
            options.ensure_available()
        except DataError as error:
            lines.append(f"data missing here: {error}")
    return lines


def print_estimate(todo: list[Job], typed: dict[str, float | None]) -> None:
    """Seconds per epoch of each kind of run to do, where each figure comes from, and the
    total; which backbones have no figure, and how to give one."""
    from fggp_repro.cli.estimate import (
        EpochTime,
        RunKind,
        bench_report,
        completed_records,
        epoch_time,
        from_records,
        kind_of_job,
    )  # fmt: skip

    roots = sorted({Path(job.spec.output_root) for job in todo})
    records = [record for root in roots for record in completed_records(root)]
    measured = from_records(records, ", ".join(map(str, roots)))
    names = {setting: planned_device_name(setting)
             for setting in {job.spec.train.device for job in todo}}  # fmt: skip
    benches = {name: bench_report(name) for name in set(names.values())}
    used: dict[RunKind, EpochTime] = {}
    unknown: dict[str, int] = {}
    total = 0.0
    for job in todo:
        name = names[job.spec.train.device]
        time = epoch_time(job.spec, name, typed, measured, benches[name])
        if time is None:
            unknown[job.spec.backbone.name] = unknown.get(job.spec.backbone.name, 0) + 1
            continue
        used[kind_of_job(job.spec, name)] = time
        total += job.spec.train.epochs * time.seconds
    for kind, time in used.items():
        print(f"{time.seconds:.3g} s per epoch for {kind}: {time.source}")
    if used:
        left_out = sum(unknown.values())
        without = f" (without the {left_out} run(s) below)" if left_out else ""
        minutes = f" ({max(round(total / 60), 1)} device-minute(s))" if total < 3600 else ""
        hours = f"{total / 3600:.1f} device-hours{minutes}{without}"
        print(f"estimated time of the runs to do: {hours}")
    if unknown:
        print(
            "no time estimate for "
            + ", ".join(f"{n} run(s) of {backbone}" for backbone, n in sorted(unknown.items()))
            + ": no completed run of that kind under output_root and no benchmark of this "
            "device; set "
            + " ".join(
                f"{'' if backbone in typed else '+'}hydra.sweeper.epoch_seconds."
                f"{backbone}=<seconds per epoch>"
                for backbone in sorted(unknown)
            )
        )


def planned_device_name(setting: str) -> str:
    """The model of the device `train.device` would train on here; the setting itself where
    this machine has no such device (a dry run on a login node)."""
    from fggp_repro.runs.records import device_name
    from fggp_repro.training.devices import planned_device

    try:
        return device_name(planned_device(setting))
    except (RuntimeError, AssertionError):  # torch's answers for a GPU that is not there
        return setting


def prepare_loggers(jobs: list[Job]) -> None:
    """Create what the jobs' trackers would race to create, once, before they start."""
    from fggp_repro.loggers.base import group_of

    prepared = set()
    for job in jobs:
        logger = job.spec.logger
        key = (repr(logger), group_of(job.spec.output_root))
        if logger is not None and key not in prepared:
            logger.builder.prepare(logger.options, key[1])
            prepared.add(key)


def _refuse(problems: list[str]) -> int:
    for problem in problems:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
    return 2
