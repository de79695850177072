"""The command line before Hydra sees it: which arguments are overrides and which are flags,
the config directories it adds, and the commonest mistakes named in a user's words (an added
key, an unknown config, a launcher plugin that is not installed)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from fggp_repro.cli.config import CHECKED_GROUPS, group_options, unknown_key_hint
from fggp_repro.foundations.errors import UserError

VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--package"}
VALUE_FLAGS |= {"-p", "--experimental-rerun", "--cfg", "-c"}
INFO_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--cfg", "-c"}
INFO_FLAGS |= {"--shell-completion", "-sc", "--experimental-rerun"}
MULTIRUN_FLAGS = {"--multirun", "-m"}
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def config_dirs(argv: list[str]) -> list[Path]:
    """Extra config directories a command line adds (`--config-dir DIR`, `-cd DIR`)."""
    dirs = []
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag in CONFIG_DIR_FLAGS:
            dirs.append(Path(value))
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if sep and flag in CONFIG_DIR_FLAGS:
            dirs.append(Path(value))
    return dirs


#: Hydra's flags that choose another primary config, which fggp-repro does not compose
OTHER_PRIMARY_CONFIG = ("--config-name", "-cn", "--config-path", "-cp")


def check_flags(argv: list[str]) -> None:
    """The run is composed from the shipped primary config (conf/config.yaml), which every check
    before Hydra starts reads: another one is refused, not checked against the wrong config."""
    for arg in argv:
        if arg.split("=")[0] in OTHER_PRIMARY_CONFIG:
            raise UserError(
                f"{arg.split('=')[0]} chooses another primary config, and fggp-repro composes its "
                "own (conf/config.yaml): add your groups and presets with --config-dir DIR"
            )


def check_arguments(overrides: list[str], dirs: Sequence[Path] = ()) -> None:
    """Name the commonest mistakes in plain `key=value` overrides (every value of a sweep list)
    in words a user expects, before anything else runs."""
    for arg in overrides:
        key, sep, value = arg.partition("=")
        bare = key.lstrip("+~")
        if bare != key and not bare.startswith("hydra") and bare != "experiment":
            raise UserError(
                f"'{arg}' adds or deletes a key, and every setting already exists: "
                f"{unknown_key_hint(bare, overrides, dirs)}"
            )
        if not sep or "(" in value or "$" in value:
            continue
        values = [v.strip() for v in value.split(",")]
        if key in CHECKED_GROUPS:
            known = group_options(key, dirs)
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
    """A launcher whose Hydra plugin is not installed: say which extra installs it. A joblib
    launcher asked for no job at all (n_jobs=0, which joblib cannot run)."""
    for arg in overrides:
        key, _, value = arg.partition("=")
        if key.lstrip("+") == "hydra.launcher.n_jobs" and value.strip() in ("0", "0.0"):
            raise UserError(
                f"{arg} runs no job at a time: give how many jobs run in parallel (k >= 1; "
                "-1 for one per core)"
            )
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
