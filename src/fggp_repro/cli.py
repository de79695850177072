"""`fggp-repro`: the Hydra application. One invocation trains one configuration; `--multirun`
sweeps the axes through whichever Hydra launcher is configured (local, joblib, submitit/SLURM)."""

from __future__ import annotations

import itertools
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from fggp_repro.config import pruner_axes, register_configs, validate
from fggp_repro.errors import UserError

CONF_DIR = Path(__file__).resolve().parent / "conf"
CHECKED_GROUPS = ("backbone", "pruner", "data", "experiment")
VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--package"}
VALUE_FLAGS |= {"-p", "--experimental-rerun"}
INFO_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--cfg", "-c"}
INFO_FLAGS |= {"--shell-completion", "-sc", "--experimental-rerun"}
PROG = "fggp-repro"
log = logging.getLogger(PROG)
_failures: list[str] = []


def run_subdir(data: str, backbone: str, pruner: Any, sparsity: float, init: str, seed: int) -> str:
    """Where a run lives below output_root: derived from the config alone, so a requeued or
    repeated job finds its own directory again. Axes a pruner has no use for (dense training's
    target, the initial state of RigL or SNIP) are left out, as in its record."""
    uses_target, uses_initial_state = pruner_axes(pruner)
    parts = [data, backbone, pruner.name]
    parts += [f"s{sparsity}"] if uses_target else []
    parts += [str(init)] if uses_initial_state else []
    return "/".join([*parts, f"seed{seed}"])


def register() -> None:
    """Schemas and the directory resolver, registered on import: launchers that run jobs in
    other processes (joblib, submitit/SLURM) import this module there but never call main()."""
    register_configs()
    if not OmegaConf.has_resolver("run_subdir"):
        OmegaConf.register_new_resolver("run_subdir", run_subdir)


register()


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_arguments(overrides: list[str]) -> None:
    """Name the commonest mistakes in plain `key=value` overrides (every value of a sweep list)
    in words a user expects, before anything else runs."""
    for arg in overrides:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or "(" in value or "$" in value:
            continue
        values = [v.strip() for v in value.split(",")]
        if key in CHECKED_GROUPS:
            known = group_options(key)
            for v in values:
                if v not in known and v != "null":
                    raise UserError(f"unknown {key} '{v}' (choose from: {', '.join(known)})")
        elif key == "sparsity":
            for v in values:
                try:
                    sparsity = float(v)
                except ValueError:
                    raise UserError(f"sparsity must be a number in (0, 1), got '{v}'") from None
                if not 0.0 < sparsity < 1.0:
                    raise UserError(f"sparsity must lie strictly between 0 and 1, got {v}")


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


def first_choice(override: str) -> str:
    """`key=a,b,c` -> `key=a`: one point of a sweep, enough to check how the config composes."""
    key, sep, value = override.partition("=")
    if not sep or value[:1] in "[{" or "(" in value or "," not in value:
        return override
    return f"{key}={value.split(',')[0]}"


def preflight(argv: list[str]) -> None:
    """Compose and validate the config (the first point of a sweep) before Hydra launches, so
    that a bad override costs one line on stderr and creates no directory."""
    overrides = overrides_in(argv)
    check_arguments(overrides)
    if any(arg.split("=")[0] in INFO_FLAGS for arg in argv):
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=PROG):
            cfg = compose(config_name="config", overrides=[first_choice(o) for o in overrides])
    except (HydraException, OmegaConfBaseException) as error:
        cause = f" ({one_line(str(error.__cause__))})" if error.__cause__ else ""
        raise UserError(one_line(str(error)) + cause) from None
    for point in sweep_points(overrides):
        candidate = cfg.copy()
        for key, value in point.items():
            OmegaConf.update(candidate, key, value)
        validate(candidate)


def sweep_points(overrides: list[str]) -> list[dict[str, str]]:
    """Every combination of the swept values of the keys `validate` looks at across fields."""
    axes = {"sparsity": [], "init": [], "pruner.name": []}
    for arg in overrides:
        key, sep, value = arg.partition("=")
        key = "pruner.name" if key == "pruner" else key
        if sep and key in axes and "(" not in value:
            axes[key] = [v.strip() for v in value.split(",")]
    swept = {key: values for key, values in axes.items() if values}
    return [dict(zip(swept, combo, strict=True)) for combo in itertools.product(*swept.values())]


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

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        run_experiment(cfg, output_dir)
    except (UserError, RunFailed) as error:
        if isinstance(error, UserError):
            _remove_hydra_leftovers(output_dir, Path(cfg.output_root))
        message = f"{PROG}: error: {error}"
        if not multirun:
            print(message, file=sys.stderr)
            sys.exit(2 if isinstance(error, UserError) else 1)
        log.error(message)
        _failures.append(f"{output_dir}: {error}")


def _remove_hydra_leftovers(output_dir: Path, output_root: Path) -> None:
    """A run refused before training leaves nothing behind: drop what Hydra created for it
    (.hydra/, its log) and the then-empty directories, never a directory holding other files."""
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


def pruner_descriptions() -> dict[str, str]:
    """Each pruner's one-line description: the first comment line of its config file."""
    descriptions = {}
    for name in group_options("pruner"):
        first = (CONF_DIR / "pruner" / f"{name}.yaml").read_text().splitlines()[0]
        descriptions[name] = first.lstrip("# ").strip()
    return descriptions


def main() -> None:
    if sys.argv[1:] == ["--pruners"]:
        descriptions = pruner_descriptions()
        width = max(map(len, descriptions))
        for name, description in descriptions.items():
            print(f"{name:<{width}}  {description}")
        return
    try:
        preflight(sys.argv[1:])
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(2)
    hydra_app()
    if _failures:
        print(f"{PROG}: {len(_failures)} run(s) of the sweep failed:", file=sys.stderr)
        for failure in _failures:
            print(f"  {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
