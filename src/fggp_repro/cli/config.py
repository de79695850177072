"""Hydra at the edge: compose a job's config, and turn it into a typed `RunSpec` once.

The command line, the planned sweeper and the jobs a launcher starts all come through here;
nothing below (experiment, trainer, pruners, models, data) sees a DictConfig. The schema Hydra
checks overrides against is generated from RunSpec itself, so there is one list of settings.
A plugin group (backbone, pruner, data) is checked against the `options` dataclass of the
object its `_target_` names, which is imported only after the settings that need no plugin
have passed (a refusal of those imports neither the plugin nor torch).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import re
import typing
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fggp_repro.cli import PROG
from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.spec import PLUGIN_GROUPS, PluginSpec, RunSpec, locate
from fggp_repro.runs.validation import check_plugins, check_settings

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
CHECKED_GROUPS = ("backbone", "pruner", "data", "logger", "protocol", "experiment")
PLUGIN_KEYS = ("name", "_target_")


def register() -> None:
    """The schema and the run-directory resolver, for Hydra. Launchers that run jobs in other
    processes (joblib, submitit/SLURM) import the CLI there and so come through here too."""
    ConfigStore.instance().store(name="base_config", node=schema())
    if not OmegaConf.has_resolver("run_subdir"):
        OmegaConf.register_new_resolver("run_subdir", run_subdir_resolver)


def schema() -> DictConfig:
    """RunSpec as a Hydra schema: the plugin groups untyped (their YAML files name their own
    options), the rest typed, writable so that overrides can set it."""
    hints = typing.get_type_hints(RunSpec)
    fields = []
    for field in dataclasses.fields(RunSpec):
        if field.name == "config":
            continue
        if field.name in PLUGIN_GROUPS:
            fields.append((field.name, Any, dataclasses.field(default=MISSING)))
        else:
            fields.append((field.name, hints[field.name], _copy_default(field)))
    node = OmegaConf.structured(dataclasses.make_dataclass("Config", fields))
    return writable(node)


def writable(node: Any) -> Any:
    """A structured config of frozen dataclasses, made writable at every level."""
    OmegaConf.set_readonly(node, False)
    if OmegaConf.is_dict(node):
        for key in node:
            child = node._get_node(key)
            if OmegaConf.is_config(child):
                writable(child)
    return node


def _copy_default(field: dataclasses.Field) -> dataclasses.Field:
    if field.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=field.default_factory)
    return dataclasses.field(default=field.default)


def to_spec(cfg: DictConfig, plugins_seen: dict[str, PluginSpec] | None = None) -> RunSpec:
    """The typed, checked RunSpec of a composed job config; ConfigError (one line) if it
    cannot run. A planner of many jobs passes one `plugins_seen` dict to all of them: a plugin
    config met before is not typed again (the paper grid's 312 jobs share a few)."""
    settings = {}
    for field in dataclasses.fields(RunSpec):
        if field.name in PLUGIN_GROUPS or field.name == "config":
            continue
        value = cfg[field.name]
        settings[field.name] = OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
    # plugins are resolved only once the settings that need none have passed: cheap refusals
    check_settings(RunSpec(backbone=None, pruner=None, data=None, **settings))  # type: ignore[arg-type]
    plugins = {}
    for group in ("data", "backbone", "pruner", "logger"):  # torch-free datasets first
        if group not in cfg:
            continue
        options = OmegaConf.to_container(cfg[group], resolve=True)
        key = f"{group}:{json.dumps(options, sort_keys=True)}"
        if plugins_seen is None or key not in plugins_seen:
            plugin = plugin_spec(group, cfg[group])
            if plugins_seen is not None:
                plugins_seen[key] = plugin
        plugins[group] = plugin if plugins_seen is None else plugins_seen[key]
    tree = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(tree, dict)
    tree.pop("hydra", None)
    for group, plugin in plugins.items():
        tree[group] = {"name": plugin.name, "_target_": plugin.target, **plain(plugin.options)}
    spec = RunSpec(**plugins, **settings, config=tree)
    check_plugins(spec)
    return spec


def plugin_spec(group: str, node: DictConfig) -> PluginSpec:
    """A plugin group's config as a PluginSpec: its `_target_` imported, the other keys checked
    and typed by that target's `options` dataclass."""
    name = str(node.get("name", "?"))
    target = node.get("_target_")
    if not target:
        raise ConfigError(f"{group}={name} names no _target_ (the dotted path of what builds it)")
    builder = locate(str(target))
    options_type = getattr(builder, "options", None)
    if not (isinstance(options_type, type) and dataclasses.is_dataclass(options_type)):
        raise ConfigError(f"{group}._target_={target} has no `options` dataclass")
    values = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items()
              if k not in PLUGIN_KEYS}  # fmt: skip
    try:
        merged = OmegaConf.merge(writable(OmegaConf.structured(options_type)), values)
        options = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        where = f"{group}.{key}" if key else f"{group}={name}"
        raise ConfigError(f"{where}: {one_line(getattr(error, 'msg', str(error)))}") from None
    return PluginSpec(name=name, target=str(target), options=options)


def plain(options: Any) -> dict[str, Any]:
    """A dataclass's fields as JSON-ready data: enums as their values."""

    def convert(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    return {f.name: convert(getattr(options, f.name)) for f in dataclasses.fields(options)}


def run_subdir_resolver(*, _root_: DictConfig) -> str:
    """`${run_subdir:}`: the run directory below output_root, from the whole job config."""
    from fggp_repro.runs.identity import run_subdir

    job = OmegaConf.masked_copy(_root_, [key for key in _root_ if key != "hydra"])
    return run_subdir(to_spec(job))


def group_options(group: str, config_dirs: Sequence[Path] = ()) -> list[str]:
    """The YAML files of a config group, in the package and in any extra config directory."""
    found = {p.stem for d in [CONF_DIR, *config_dirs] for p in (Path(d) / group).glob("*.yaml")}
    return sorted(found)


def compose_job(
    overrides: list[str], config_dirs: Sequence[Path] = (), with_hydra: bool = False
) -> DictConfig:
    """The job config these overrides give, composed as Hydra would (with Hydra's own node
    where `with_hydra`)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside the app (the planned sweeper)
        return compose(config_name="config", overrides=overrides, return_hydra_config=with_hydra)
    register()
    if config_dirs:
        paths = ",".join(f"file://{Path(d).absolute()}" for d in config_dirs)
        overrides = [f"hydra.searchpath=[{paths}]", *overrides]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=PROG):
        return compose(config_name="config", overrides=overrides, return_hydra_config=with_hydra)


def job_composer(config_dirs: Sequence[Path] = ()) -> Callable[[list[str]], DictConfig]:
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
                composed[groups] = compose_job(list(groups), config_dirs)
            cfg = copy.deepcopy(composed[groups])
            for override in parsed:
                if not _selects_config(override):
                    if override.is_add() or override.is_delete() or override.is_force_add():
                        raise ValueError("not a plain value")
                    OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
            return cfg
        except (ValueError, HydraException, OmegaConfBaseException):
            return compose_job(overrides, config_dirs)

    return compose


def _selects_config(override: Any) -> bool:
    key = override.key_or_group
    return key in CHECKED_GROUPS or "/" in key or key.startswith("hydra")


def describe_error(
    error: BaseException, overrides: Sequence[str] = (), config_dirs: Sequence[Path] = ()
) -> str:
    """Hydra's and OmegaConf's several-line messages as one line, in this tool's words where a
    key is unknown (Hydra's own hint, `+key=...`, would add it instead)."""
    text = one_line(str(error))
    if text.startswith("Could not override '"):
        return unknown_key_hint(text.split("'")[1], overrides, config_dirs)
    if "NoViableAlt" in text or "no viable alternative" in text:
        return text + " " + quoting_hint(text, overrides)
    cause = error.__cause__
    return text + (f" ({one_line(str(cause))})" if cause else "")


def quoting_hint(text: str, overrides: Sequence[str]) -> str:
    """How to write a value Hydra's override grammar cannot read bare (a letter outside ASCII,
    a bracket, a quote): in quotes, as the shell passes them."""
    culprit = next((o for o in overrides if o in text), None)
    if culprit is None:
        return "(quote a value with other characters: 'key=\"value\"')"
    key, _, value = culprit.partition("=")
    return f"(quote the value, as the shell passes it: '{key}=\"{value}\"')"


def hydra_quoted(value: str) -> str:
    """A value in double quotes, as Hydra's override grammar reads any character inside them:
    a quote escaped, and the backslashes before a quote or at the end doubled (Hydra leaves
    every other backslash as it is)."""

    def escape(match: re.Match) -> str:
        return match.group(1) * 2 + ('\\"' if match.group(2) else "")

    return '"' + re.sub(r'(\\*)("|$)', escape, value) + '"'


#: where the shipped config.yaml puts a run, and a sweep's job below the sweep's folder: both
#: derived by the ${run_subdir:} resolver, which the command line spares Hydra (cli.main)
SHIPPED_RUN_DIR = "${output_root}/${run_subdir:}"
SHIPPED_SWEEP_SUBDIR = "${run_subdir:}"


def raw_hydra_setting(overrides: list[str], key: str, config_dirs: Sequence[Path] = ()) -> str:
    """A `hydra.<key>` setting as these overrides and the config files leave it, interpolations
    unresolved (`run.dir` -> "${output_root}/${run_subdir:}" unless something set it)."""
    cfg = compose_job(overrides, config_dirs, with_hydra=True)
    node = OmegaConf.to_container(cfg.hydra, resolve=False)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return str(node)


def one_line(message: str) -> str:
    """Hydra's and OmegaConf's several-line messages, folded into one line."""
    kept = []
    for line in message.splitlines():
        line = line.strip()
        if line.startswith(("Set the environment variable", "object_type=", "full_key:")):
            break
        if line:
            kept.append(line)
    return " ".join(kept)


def unknown_key_hint(
    key: str, overrides: Sequence[str] = (), config_dirs: Sequence[Path] = ()
) -> str:
    """`key` with the closest keys of the config these overrides choose (the chosen pruner's
    own options, not the default pruner's), if any."""
    known = _known_keys(overrides, config_dirs)
    close = difflib.get_close_matches(key, known, n=2)
    if key in known:
        return f"set it with {key}=<value>"
    suggestion = f"did you mean {' or '.join(close)}?" if close else "see fggp-repro --cfg job"
    return f"unknown key '{key}' ({suggestion})"


def _known_keys(overrides: Sequence[str], config_dirs: Sequence[Path]) -> list[str]:
    choices = [o for o in overrides if o.split("=")[0] in CHECKED_GROUPS and "," not in o]
    try:
        cfg = compose_job(choices, config_dirs)
    except (HydraException, OmegaConfBaseException):
        cfg = compose_job([], config_dirs)
    keys: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for key in node:
            child = node._get_node(key)
            path = f"{prefix}{key}"
            if OmegaConf.is_dict(child):
                walk(child, f"{path}.")
            elif key != "_target_":
                keys.append(path)

    walk(cfg, "")
    return keys
