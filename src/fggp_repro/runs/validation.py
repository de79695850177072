"""Whether a run spec can run: what a type cannot say. Every range sits beside its option
(foundations.options); here are the rules that tie settings together, and each plugin's own
`check_settings`. Each problem is one ConfigError line, raised before anything is written."""

from __future__ import annotations

import re

from fggp_repro.datasets.base import kept_after_holdout
from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.options import check_options
from fggp_repro.foundations.spec import INITIAL_DENSITY, CompileMode, Init, PluginSpec, RunSpec
from fggp_repro.models import check_input

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def train_set_size(data: PluginSpec) -> int:
    """Training images after the held-out tail is taken away."""
    return kept_after_holdout(data.options.train_images(), data.options.holdout)


def total_iterations(spec: RunSpec) -> int:
    n, batch = train_set_size(spec.data), spec.train.batch_size
    per_epoch = n // batch if spec.train.drop_last else -(-n // batch)
    return spec.train.epochs * per_epoch


def check_settings(spec: RunSpec) -> None:
    """The settings that need no plugin: ranges of every top-level part, and their relations."""
    for part in ("optim", "train", "schedule", "checkpoint"):
        check_options(getattr(spec, part), part)
    check_options(spec, "", names=("seed", "sparsity"))
    if not str(spec.output_root).strip():
        raise ConfigError("output_root is empty: name a directory (default results/runs)")
    if spec.protocol.best_test_after_pruning and spec.train.eval_every != 1:
        raise ConfigError(
            "protocol.best_test_after_pruning needs the test accuracy of every epoch: set "
            "train.eval_every=1"
        )
    if not DEVICE_PATTERN.fullmatch(spec.train.device):
        raise ConfigError(
            f"train.device must be auto, cpu, cuda or cuda:<index>, got '{spec.train.device}'"
        )
    if spec.train.compile is CompileMode.cuda_graph and spec.train.device in ("cpu", "mps"):
        raise ConfigError(
            f"train.compile=cuda_graph captures CUDA graphs, and train.device="
            f"{spec.train.device}: use train.compile=auto (eager there) or a CUDA device"
        )


def validate(spec: RunSpec) -> None:
    """All of it: the settings, each plugin's options, and the rules between them."""
    check_settings(spec)
    check_plugins(spec)


def check_plugins(spec: RunSpec) -> None:
    """Each plugin's options, and the rules between plugins and settings (check_settings has
    passed: config.to_spec calls it before it imports any plugin)."""
    for group in ("data", "backbone", "pruner", "logger"):
        plugin = getattr(spec, group)
        if plugin is not None:
            check_options(plugin.options, group)
    data = spec.data.options
    image_shape = tuple(data.image_shape())
    channels = image_shape[0]
    for key in ("mean", "std"):
        values = list(getattr(data, key))
        if len(values) != channels or (key == "std" and min(values) <= 0):
            raise ConfigError(
                f"data.{key} must be {channels} per-channel value(s) (data={spec.data.name}'s "
                f"images have {channels} channel(s)){', std > 0' if key == 'std' else ''}, "
                f"got {values}"
            )
    check_input(spec.backbone, image_shape)
    n_train = train_set_size(spec.data)
    if n_train < 1:
        raise ConfigError(f"data.holdout={data.holdout} leaves no training image")
    if spec.train.batch_size > n_train:
        raise ConfigError(
            f"train.batch_size={spec.train.batch_size} is larger than the {n_train} training "
            "images: lower it"
        )
    pruner = spec.pruner.builder
    traits = pruner.traits
    if not traits.uses_initial_state and spec.init is not Init.dense:
        raise ConfigError(
            f"pruner={spec.pruner.name} has no initial-state axis (it sets its own starting "
            f"mask), so init={spec.init.value} means nothing for it: run it with init=dense, "
            "which its record reports as init: n/a"
        )
    start = INITIAL_DENSITY[spec.init]
    if traits.uses_target and traits.uses_initial_state and 1.0 - spec.sparsity >= start:
        what = "cannot be reached by" if 1.0 - spec.sparsity > start else "leaves nothing for"
        raise ConfigError(
            f"init={spec.init.value} starts at density {start}, so the target sparsity "
            f"{spec.sparsity} (density {1 - spec.sparsity:.4g}) {what} pruning: choose a "
            f"sparsity above {1 - start:g}"
        )
    try:
        pruner.check_settings(spec.pruner.options, spec.schedule, total_iterations(spec))
    except ConfigError as error:
        raise ConfigError(f"pruner={spec.pruner.name}: {error}") from None
