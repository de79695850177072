"""`fggp-repro`: the Hydra application. One invocation trains one configuration; `--multirun`
sweeps the axes through the `planned` sweeper (cli.sweep) and whichever Hydra launcher is
configured (local, joblib, submitit/SLURM).

Everything a user can get wrong is checked before Hydra writes anything: a refused command
prints one line, exits 2, and leaves no folder, log or `.hydra/` behind.
"""

from __future__ import annotations

import functools
import logging
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import hydra_plugins.fggp_repro_sweeper  # noqa: F401  (the `planned` sweeper's config)
from fggp_repro.cli import PROG
from fggp_repro.cli.arguments import (
    INFO_FLAGS,
    MULTIRUN_FLAGS,
    check_arguments,
    check_flags,
    check_launcher,
    config_dirs,
    overrides_in,
)
from fggp_repro.cli.config import (
    CONF_DIR,
    SHIPPED_RUN_DIR,
    compose_job,
    describe_error,
    group_options,
    hydra_quoted,
    raw_hydra_setting,
    register,
    to_spec,
)
from fggp_repro.cli.jobs import Job
from fggp_repro.foundations.errors import UserError
from fggp_repro.foundations.spec import RunSpec

log = logging.getLogger(PROG)

register()


@dataclass
class Checked:
    """What preflight found: whether Hydra has anything to start (not for a completed run or a
    plan), the outermost folder of output_root this command would create (a refusal inside the
    app removes only what this command created), and a single run's job, checked: its spec is
    the one the run trains, built and validated once."""

    needs_run: bool
    created: Path | None = None
    job: Job | None = None


def preflight(argv: list[str]) -> Checked:
    """Check the command line before Hydra starts. A single run is composed, validated and
    checked against its environment and directory (or, with hydra.sweeper.dry_run=true, only
    planned; with --cfg, only checked as a run would be, without torch). A sweep's jobs are
    checked by the planned sweeper."""
    from fggp_repro.cli.jobs import check_writable_directory, plan_jobs
    from fggp_repro.foundations.files import first_missing

    overrides, dirs = overrides_in(argv), config_dirs(argv)
    check_flags(argv)
    check_arguments(overrides, dirs)
    check_launcher(overrides)
    for arg in overrides:
        key, _, value = arg.partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir") and (made_in := fixed_directory(value)):
            check_writable_directory(Path(made_in), key, value)
    multirun = any(arg in MULTIRUN_FLAGS for arg in argv)
    shows_config = any(arg.split("=")[0] in ("--cfg", "-c") for arg in argv)
    if any(arg.split("=")[0] in INFO_FLAGS for arg in argv) and not (shows_config and not multirun):
        return Checked(needs_run=True)
    if multirun:
        check_sweep_base(overrides, dirs)
        return Checked(needs_run=True)
    dry_run = single_run_dry_run(overrides)
    jobs, problems = plan_jobs(
        [[o for o in overrides if not o.lstrip("+").startswith("hydra.sweeper.")]],
        functools.partial(compose_job, config_dirs=dirs),
        functools.partial(describe_error, config_dirs=dirs),
        check_environment=not (dry_run or shows_config),
        read_status=not shows_config,
    )
    if problems:
        raise UserError(problems[0])
    job = jobs[0]
    if shows_config:  # the config is one a run would accept: Hydra prints it
        return Checked(needs_run=True)
    if dry_run:
        from fggp_repro.cli.sweep import print_plan

        print_plan(jobs, epoch_seconds_in(overrides))
        print("(the plan of this one run: add --multirun for a preset's whole sweep grid)")
        return Checked(needs_run=False)
    if not job.needs_run:
        print(f"{PROG}: already completed: {job.run_dir} (skip_completed=false reruns it)"
              f"{missing_text(job.run_dir)}")  # fmt: skip
        return Checked(needs_run=False)
    return Checked(True, first_missing(Path(job.spec.output_root)), job)


def with_run_directory(argv: list[str], run_dir: Path) -> list[str]:
    """The command line with `hydra.run.dir=<the run's directory>`, as preflight derived it, at
    the head of its overrides (Hydra reads them as one block), so that Hydra need not derive it
    again: the shipped ${run_subdir:} resolver builds a whole spec. As it is where the command
    or a config file sets the directory, or the path holds an interpolation's `$`."""
    overrides = overrides_in(argv)
    raw = raw_hydra_setting(overrides, "run.dir", config_dirs(argv))
    if raw != SHIPPED_RUN_DIR or "$" in str(run_dir):
        return argv
    at = argv.index(overrides[0]) if overrides else len(argv)
    return [*argv[:at], f"hydra.run.dir={hydra_quoted(str(run_dir))}", *argv[at:]]


def single_run_dry_run(overrides: list[str]) -> bool:
    """Whether a command without --multirun asks for the plan (hydra.sweeper.dry_run=true);
    the sweeper's other settings act on a sweep only, so here they are refused."""
    dry_run = False
    for arg in overrides:
        key, _, value = arg.lstrip("+").partition("=")
        if key == "hydra.sweeper.dry_run":
            dry_run = value.strip().lower() in ("true", "1", "yes")
        elif key.startswith("hydra.sweeper.") and not key.startswith("hydra.sweeper.epoch_seconds"):
            raise UserError(
                f"{arg} sets the sweeper of --multirun sweeps, and this command runs one "
                "configuration: add --multirun"
            )
    return dry_run


def epoch_seconds_in(overrides: list[str]) -> dict[str, float | None]:
    """`hydra.sweeper.epoch_seconds.<backbone>=<s>` settings, for a single run's plan, over the
    shipped backbones' keys as the sweeper has them."""
    from hydra_plugins.fggp_repro_sweeper import shipped_backbones

    typed = shipped_backbones()
    for arg in overrides:
        key, _, value = arg.lstrip("+").partition("=")
        if key.startswith("hydra.sweeper.epoch_seconds."):
            try:
                typed[key.rpartition(".")[2]] = float(value)
            except ValueError:
                raise UserError(f"{arg}: seconds per epoch must be a number") from None
    return typed


def missing_text(run_dir: Path) -> str:
    """`; its metrics.jsonl is missing ...` where a completed run lacks a file it wrote."""
    from fggp_repro.runs.records import missing_files

    missing = missing_files(run_dir)
    if not missing:
        return ""
    return (
        f"; its {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing "
        "(deleted since it completed): its figures lack them until it is rerun"
    )


def fixed_directory(value: str) -> str:
    """The part of a directory setting that no interpolation (`${now:...}`) changes, up to a
    whole directory: `/a/b${now:%H}` is made in `/a/`. Empty when nothing is fixed."""
    head, interpolated, _ = value.partition("$")
    if interpolated and not head.endswith("/"):
        return head.rpartition("/")[0] + "/" if "/" in head else ""
    return head


def check_sweep_base(overrides: list[str], dirs: list[Path]) -> None:
    """Compose what Hydra composes before the sweeper sees a job, the overrides that sweep
    nothing, so that a key no config has is one line here rather than Hydra's several; every
    job is then checked by the planned sweeper."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise UserError(describe_error(error, overrides, dirs)) from None
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        compose_job(fixed, dirs)
    except (HydraException, OmegaConfBaseException) as error:
        message = describe_error(error, fixed, dirs)
        swept = {o.key_or_group for o in parsed if o.is_sweep_override()}
        for key, _, value in (line.partition("=") for line in fixed):
            group = key.lstrip("+").split(".")[0]
            if f"'{key.lstrip('+')}'" in message and group in swept:
                message += (
                    f"; Hydra sets it on the default {group} before the sweep: write "
                    f"{key}=choice({value}) to set it in each job"
                )
        raise UserError(message) from None


def run_task(cfg: DictConfig, created: Path | None = None, spec: RunSpec | None = None) -> None:
    """Hydra's task: one job of a run or a sweep, from its composed config (a single run's spec
    comes from preflight, which built and checked it from the same overrides)."""
    from fggp_repro.runs.experiment import RunFailed, run_checked
    from fggp_repro.training.stopping import Preempted, StopRequest

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    with StopRequest() as stop:
        try:
            run_checked(spec or to_spec(cfg), output_dir, stop)
        except Preempted as preempted:
            _exit_preempted(preempted.signum, stop.previous.get(preempted.signum), output_dir)
        except (UserError, RunFailed) as error:
            if isinstance(error, UserError):
                _remove_hydra_leftovers(output_dir, Path(cfg.output_root), created)
            message = f"{PROG}: error: {error}"
            if not multirun:
                print(message, file=sys.stderr)
                sys.exit(2 if isinstance(error, UserError) else 1)
            log.error(message)


def hydra_app(created: Path | None = None, spec: RunSpec | None = None) -> None:
    """Run Hydra (one job, or a sweep) with `run_task` as its task function."""
    task = functools.partial(run_task, created=created, spec=spec)
    task = functools.update_wrapper(task, run_task)
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(task)()


def _exit_preempted(signum: int, previous: Any, output_dir: Path) -> None:
    """After the checkpoint: say where to resume, let a launcher's own handler act (submitit
    requeues the job and exits), else exit with 128 + the signal number."""
    name = signal.Signals(signum).name
    print(
        f"{PROG}: stopped by {name} after a checkpoint; rerun the same command to resume "
        f"{output_dir}",
        file=sys.stderr,
    )
    if callable(previous) and previous is not signal.default_int_handler:
        previous(signum, None)
    sys.exit(128 + signum)


def _remove_hydra_leftovers(output_dir: Path, output_root: Path, created: Path | None) -> None:
    """A run refused before training leaves nothing behind: drop what Hydra created for it
    (.hydra/, its log) and the then-empty directories, never a directory holding other files;
    up to the outermost folder this command created (`created`), else to output_root."""
    from fggp_repro.foundations.files import remove_empty_directories
    from fggp_repro.runs.records import RESULT_FILE

    if not output_dir.is_dir() or (output_dir / RESULT_FILE).exists():
        return
    root_logger = logging.getLogger()
    for handler in list(root_logger.handlers):
        if (
            isinstance(handler, logging.FileHandler)
            and output_dir.resolve() in Path(handler.baseFilename).parents
        ):
            handler.close()
            root_logger.removeHandler(handler)
    shutil.rmtree(output_dir / ".hydra", ignore_errors=True)
    (output_dir / f"{PROG}.log").unlink(missing_ok=True)
    root, directory = output_root.resolve(), output_dir.resolve()
    if root in directory.parents:  # output_root itself only where this command created it
        below_root = root / directory.relative_to(root).parts[0]
        top = created.resolve() if created is not None else below_root
        remove_empty_directories(directory, top)


def pruner_descriptions(dirs: list[Path]) -> dict[str, str]:
    """Each pruner's one-line description: the first comment line of its config file, the
    package's before any `--config-dir`'s, as Hydra finds them."""
    descriptions = {}
    for name in group_options("pruner", dirs):
        path = next(
            p for d in [CONF_DIR, *dirs] if (p := Path(d) / "pruner" / f"{name}.yaml").exists()
        )
        lines = path.read_text().splitlines() or [""]
        descriptions[name] = lines[0].lstrip("# ").strip() if lines[0].startswith("#") else ""
    return descriptions


def main() -> None:
    given = list(sys.argv)
    try:
        run_command(sys.argv[1:])
    finally:  # Hydra reads sys.argv: what this command added goes with it
        sys.argv[:] = given


def run_command(argv: list[str]) -> None:
    """fggp-repro's command line (`main`), from its arguments."""
    if MULTIRUN_FLAGS & set(argv):  # Hydra's parser wants the flag before the overrides
        argv = ["--multirun", *(arg for arg in argv if arg not in MULTIRUN_FLAGS)]
    sys.argv[1:] = argv
    if "--pruners" in argv:
        descriptions = pruner_descriptions(config_dirs(argv))
        width = max(map(len, descriptions))
        for name, description in descriptions.items():
            print(f"{name:<{width}}  {description}")
        return
    try:
        checked = preflight(argv)
        if checked.needs_run and checked.job is not None:
            sys.argv[1:] = with_run_directory(argv, checked.job.run_dir)
        if checked.needs_run:
            hydra_app(checked.created, checked.job.spec if checked.job else None)
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
