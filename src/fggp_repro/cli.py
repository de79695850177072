"""`fggp-repro`: the Hydra application. One invocation trains one configuration; `--multirun`
sweeps the axes through the `planned` sweeper (fggp_repro.sweep) and whichever Hydra launcher is
configured (local, joblib, submitit/SLURM).

Everything a user can get wrong is checked before Hydra writes anything: a refused command
prints one line, exits 2, and leaves no folder, log or `.hydra/` behind.
"""

from __future__ import annotations

import copy
import difflib
import logging
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fggp_repro.config import register_configs
from fggp_repro.errors import UserError

CONF_DIR = Path(__file__).resolve().parent / "conf"
CHECKED_GROUPS = ("backbone", "pruner", "data", "protocol", "experiment")
VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--package"}
VALUE_FLAGS |= {"-p", "--experimental-rerun"}
INFO_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--cfg", "-c"}
INFO_FLAGS |= {"--shell-completion", "-sc", "--experimental-rerun"}
MULTIRUN_FLAGS = {"--multirun", "-m"}
PROG = "fggp-repro"
log = logging.getLogger(PROG)
_state: dict[str, Any] = {"output_root_existed": True}


def run_subdir_resolver(*, _root_: DictConfig) -> str:
    """`${run_subdir:}`: the run directory below output_root, from the whole job config."""
    from fggp_repro.identity import run_subdir

    job = OmegaConf.masked_copy(_root_, [key for key in _root_ if key != "hydra"])
    return run_subdir(job)


def register() -> None:
    """Schemas and the directory resolver, registered on import: launchers that run jobs in
    other processes (joblib, submitit/SLURM) import this module there but never call main()."""
    import hydra_plugins.fggp_repro_sweeper  # noqa: F401  (the `planned` sweeper's config)

    register_configs()
    if not OmegaConf.has_resolver("run_subdir"):
        OmegaConf.register_new_resolver("run_subdir", run_subdir_resolver)


register()


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_arguments(overrides: list[str]) -> None:
    """Name the commonest mistakes in plain `key=value` overrides (every value of a sweep list)
    in words a user expects, before anything else runs."""
    for arg in overrides:
        key, sep, value = arg.partition("=")
        bare = key.lstrip("+~")
        if bare != key and not bare.startswith("hydra") and bare != "experiment":
            raise UserError(
                f"'{arg}' adds or deletes a key, and every setting already exists: "
                f"{unknown_key_hint(bare, overrides)}"
            )
        if not sep or "(" in value or "$" in value:
            continue
        values = [v.strip() for v in value.split(",")]
        if key in CHECKED_GROUPS:
            known = group_options(key)
            for v in values:
                if v not in known and v != "null":
                    raise UserError(f"unknown {key} '{v}' (choose from: {', '.join(known)})")


LAUNCHER_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "parallel"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}


def check_launcher(overrides: list[str]) -> None:
    """A launcher whose Hydra plugin is not installed: say which extra installs it."""
    import importlib.util

    for arg in overrides:
        key, _, value = arg.partition("=")
        if key.lstrip("+") == "hydra/launcher" and value in LAUNCHER_PLUGINS:
            module, extra = LAUNCHER_PLUGINS[value]
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                raise UserError(
                    f"hydra/launcher={value} needs a Hydra launcher plugin that is not "
                    f"installed here: pip install -e '.[{extra}]'"
                )


def unknown_key_hint(key: str, overrides: Sequence[str] = ()) -> str:
    """`key` with the closest keys of the config these overrides choose (the chosen pruner's
    own options, not the default pruner's), if any."""
    known = _known_keys(overrides)
    close = difflib.get_close_matches(key, known, n=2)
    if key in known:
        return f"set it with {key}=<value>"
    suggestion = f"did you mean {' or '.join(close)}?" if close else "see fggp-repro --cfg job"
    return f"unknown key '{key}' ({suggestion})"


def _known_keys(overrides: Sequence[str]) -> list[str]:
    choices = [o for o in overrides if o.split("=")[0] in CHECKED_GROUPS and "," not in o]
    try:
        cfg = compose_job(choices)
    except (HydraException, OmegaConfBaseException):
        cfg = compose_job([])
    keys: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for key in node:
            child = node._get_node(key)
            path = f"{prefix}{key}"
            if OmegaConf.is_dict(child):
                walk(child, f"{path}.")
            else:
                keys.append(path)

    walk(cfg, "")
    return keys


def overrides_in(argv: list[str]) -> list[str]:
    """The override arguments of a command line, without flags and the values flags take."""
    overrides, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in VALUE_FLAGS
        else:
            overrides.append(arg)
    return overrides


def compose_job(overrides: list[str]) -> DictConfig:
    """The job config these overrides give, composed as Hydra would (without its own node)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside the app (the planned sweeper)
        return compose(config_name="config", overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=PROG):
        return compose(config_name="config", overrides=overrides)


def job_composer() -> Callable[[list[str]], DictConfig]:
    """`compose_job` for many jobs: the defaults list is composed once per choice of config
    groups, and plain values are then set the way Hydra sets them (`OmegaConf.update` with the
    parsed value, merge=True). Anything else, or any error, goes through Hydra in full."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    composed: dict[tuple[str, ...], DictConfig] = {}

    def compose(overrides: list[str]) -> DictConfig:
        try:
            parsed = parser.parse_overrides(overrides)
            groups = tuple(o.input_line for o in parsed if _selects_config(o))
            if groups not in composed:
                composed[groups] = compose_job(list(groups))
            cfg = copy.deepcopy(composed[groups])
            for override in parsed:
                if not _selects_config(override):
                    if override.is_add() or override.is_delete() or override.is_force_add():
                        raise ValueError("not a plain value")
                    OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
            return cfg
        except (ValueError, HydraException, OmegaConfBaseException):
            return compose_job(overrides)

    return compose


def _selects_config(override: Any) -> bool:
    key = override.key_or_group
    return key in CHECKED_GROUPS or "/" in key or key.startswith("hydra")


def describe_error(error: BaseException, overrides: Sequence[str] = ()) -> str:
    """Hydra's and OmegaConf's several-line messages as one line, in this tool's words where a
    key is unknown (Hydra's own hint, `+key=...`, would add it instead)."""
    text = one_line(str(error))
    if text.startswith("Could not override '"):
        return unknown_key_hint(text.split("'")[1], overrides)
    cause = error.__cause__
    return text + (f" ({one_line(str(cause))})" if cause else "")


def preflight(argv: list[str]) -> bool:
    """Check the command line before Hydra starts. A single run is composed, validated and
    checked against its environment and directory; returns False when it is already completed
    (nothing to start). A sweep's jobs are checked by the planned sweeper."""
    from fggp_repro.plan import check_writable_directory, plan_jobs

    overrides = overrides_in(argv)
    check_arguments(overrides)
    check_launcher(overrides)
    for arg in overrides:
        key, _, value = arg.partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir") and value and "$" not in value:
            check_writable_directory(Path(value), key)
    if any(arg.split("=")[0] in INFO_FLAGS for arg in argv):
        return True
    if any(arg in MULTIRUN_FLAGS for arg in argv):
        return True
    jobs, problems = plan_jobs([overrides], compose_job, describe_error)
    if problems:
        raise UserError(problems[0])
    job = jobs[0]
    _state["output_root_existed"] = Path(job.cfg.output_root).exists()
    if not job.needs_run:
        print(f"{PROG}: already completed: {job.run_dir} (skip_completed=false reruns it)")
        return False
    return True


def one_line(message: str) -> str:
    """Hydra's and OmegaConf's several-line messages, folded into one line."""
    kept = []
    for line in message.splitlines():
        line = line.strip()
        if line.startswith(("Set the environment variable", "object_type=")):
            break
        if line:
            kept.append(line)
    return " ".join(kept)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_app(cfg: DictConfig) -> None:
    from fggp_repro.experiment import RunFailed, run_experiment
    from fggp_repro.trainer import Preempted, StopRequest

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    with StopRequest() as stop:
        try:
            run_experiment(cfg, output_dir, stop)
        except Preempted as preempted:
            _exit_preempted(preempted.signum, stop.previous.get(preempted.signum), output_dir)
        except (UserError, RunFailed) as error:
            if isinstance(error, UserError):
                _remove_hydra_leftovers(output_dir, Path(cfg.output_root))
            message = f"{PROG}: error: {error}"
            if not multirun:
                print(message, file=sys.stderr)
                sys.exit(2 if isinstance(error, UserError) else 1)
            log.error(message)


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


def _remove_hydra_leftovers(output_dir: Path, output_root: Path) -> None:
    """A run refused before training leaves nothing behind: drop what Hydra created for it
    (.hydra/, its log) and the then-empty directories, never a directory holding other files;
    output_root too if this command created it."""
    if not output_dir.is_dir() or (output_dir / "result.json").exists():
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
    root = output_root.resolve()
    directory = output_dir.resolve()
    while directory != root and root in directory.parents and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
    if directory == root and not _state["output_root_existed"] and not any(root.iterdir()):
        root.rmdir()


def pruner_descriptions() -> dict[str, str]:
    """Each pruner's one-line description: the first comment line of its config file."""
    descriptions = {}
    for name in group_options("pruner"):
        first = (CONF_DIR / "pruner" / f"{name}.yaml").read_text().splitlines()[0]
        descriptions[name] = first.lstrip("# ").strip()
    return descriptions


def main() -> None:
    argv = sys.argv[1:]
    if MULTIRUN_FLAGS & set(argv):  # Hydra's parser wants the flag before the overrides
        argv = ["--multirun", *(arg for arg in argv if arg not in MULTIRUN_FLAGS)]
        sys.argv[1:] = argv
    if argv == ["--pruners"]:
        descriptions = pruner_descriptions()
        width = max(map(len, descriptions))
        for name, description in descriptions.items():
            print(f"{name:<{width}}  {description}")
        return
    try:
        if not preflight(argv):
            return
        hydra_app()
        from hydra_plugins.fggp_repro_sweeper import FAILED_SWEEPS

        if FAILED_SWEEPS:
            sys.exit(FAILED_SWEEPS[-1])
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
