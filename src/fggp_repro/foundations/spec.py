"""The typed description of one run: what the command line hands to everything below it.

A `RunSpec` is frozen and holds typed parts: the optimiser, the training loop, the pruning
schedule, masking, checkpoints, the protocol, and three plugins (backbone, pruner, data). A
plugin is named by the dotted path of the object that builds it (`target`) and carries that
object's own typed options, so a new pruner, backbone or dataset brings its options with it and
nothing central lists it. No Hydra in here: a notebook can build a RunSpec by hand, and the
command line builds one from its composed config (fggp_repro.cli.config).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.options import Choice, bounded, positive_list

PLUGIN_GROUPS = ("backbone", "pruner", "data", "logger")


class Init(Choice):
    """Initial state of the network before gradual pruning starts."""

    dense = "dense"
    sparse50 = "sparse50"


INITIAL_DENSITY = {Init.dense: 1.0, Init.sparse50: 0.5}


class CompileMode(Choice):
    """How a step runs (training.steps): eager PyTorch (`none`); the whole step captured as
    one CUDA graph (`cuda_graph`); or torch.compile without CUDA graphs, inductor's `default`
    or `max_autotune`. `auto` is cuda_graph on a GPU and eager elsewhere. torch.compile's own
    CUDA graphs (`reduce-overhead`) are not offered: a step of two compiled functions frees the
    first one's outputs under them (pytorch/pytorch#160281)."""

    auto = "auto"
    none = "none"
    cuda_graph = "cuda_graph"
    default = "default"
    max_autotune = "max_autotune"


class DensityBase(Choice):
    """What a density (and FGGP's |A|) is counted over: every Conv2d/Linear parameter, biases
    and the dense first conv included (the FGGP authors' code), or the prunable weights only."""

    conv_linear = "conv_linear"
    prunable = "prunable"


@dataclass(frozen=True)
class OptimSpec:
    lr: float = bounded(0.1, "(0, inf)")
    momentum: float = bounded(0.9, "[0, 1)")
    nesterov: bool = True
    weight_decay: float = bounded(5e-4, "[0, inf)")
    milestones: list[int] = positive_list([80, 120])
    gamma: float = bounded(0.1, "(0, 1]")
    label_smoothing: float = bounded(0.1, "[0, 1)")


@dataclass(frozen=True)
class TrainSpec:
    epochs: int = bounded(160, "[1, inf)")
    batch_size: int = bounded(64, "[1, inf)")
    drop_last: bool = False
    device: str = "auto"
    bf16: bool = False
    compile: CompileMode = CompileMode.auto
    channels_last: bool | None = None  # None: on a GPU, not on a CPU
    eval_every: int = bounded(0, "[0, inf)", "0: test after the last epoch only")
    eval_batch_size: int = bounded(1000, "[1, inf)")
    deterministic: bool = False
    progress: bool = True


@dataclass(frozen=True)
class ScheduleSpec:
    """When gradual pruners act: every `interval` iterations from `start_iteration` until
    end_fraction x total iterations, on the cubic schedule of Zhu & Gupta (2017)."""

    interval: int = bounded(2000, "[1, inf)")
    start_iteration: int = bounded(0, "[0, inf)")
    end_fraction: float = bounded(0.8, "(0, 1]")


@dataclass(frozen=True)
class MaskingSpec:
    keep_first_conv_dense: bool = True
    density_base: DensityBase = DensityBase.conv_linear


@dataclass(frozen=True)
class CheckpointSpec:
    """Training state written at the end of every `every`-th epoch (0: never) once `min_seconds`
    have passed since the last one, and on preemption; the newest `keep` are kept. One costs
    about a GPU epoch of VGG-19 (save, checksum, fsync of 180 MB), so by default at most one in
    five minutes. `save_model` writes the final weights and masks to model.pt."""

    every: int = bounded(1, "[0, inf)", "0: never")
    min_seconds: float = bounded(300.0, "[0, inf)", "0: every `every` epochs")
    keep: int = bounded(2, "[1, inf)")
    save_model: bool = True


@dataclass(frozen=True)
class ProtocolSpec:
    """Which published protocol the settings follow (`conf/protocol/`), named in every record so
    that comparisons with published numbers can say whether like is compared with like.
    `best_test_after_pruning` also records GraNet's headline figure, the best test accuracy over
    the epochs after the pruning window: selected on test, so never the main figure."""

    name: str = "fggp_authors"
    best_test_after_pruning: bool = False


@dataclass(frozen=True)
class PluginSpec:
    """A backbone, pruner or dataset: its config `name`, the dotted path of what builds it, and
    that builder's options (an instance of its `options` dataclass). Two names may build the
    same target with other options: fggp and mfgn are both fggp_repro.pruners.two_stage.TwoStage.
    """

    name: str
    target: str
    options: Any

    @property
    def builder(self) -> Any:
        return locate(self.target)


@dataclass(frozen=True)
class RunSpec:
    """One run. `config` is the resolved config it was made from, as plain data: the record
    keeps it, and the run's identity is a hash of it."""

    backbone: PluginSpec
    pruner: PluginSpec
    data: PluginSpec
    #: where metrics go besides metrics.jsonl (TensorBoard, W&B, MLflow); not part of the run id
    logger: PluginSpec | None = None
    sparsity: float = bounded(0.95, "(0, 1)", "the target's fraction of pruned weights")
    init: Init = Init.dense
    seed: int = bounded(1, "[0, inf)")
    optim: OptimSpec = field(default_factory=OptimSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    masking: MaskingSpec = field(default_factory=MaskingSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)
    protocol: ProtocolSpec = field(default_factory=ProtocolSpec)
    output_root: str = "results/runs"
    skip_completed: bool = True
    config: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def flatten_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as one level of dotted keys: {"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}.
    Leaves stay as they are (lists, and empty mappings, included)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def locate(target: str) -> Any:
    """The object a dotted path names (`package.module.Name`), imported on demand."""
    module_name, _, attribute = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"cannot import {target}: {error}") from None
    except ValueError:
        raise ConfigError(f"'{target}' is not a dotted path (package.module.Name)") from None
    if not hasattr(module, attribute):
        raise ConfigError(f"cannot import {target}: {module_name} has no '{attribute}'")
    return getattr(module, attribute)
