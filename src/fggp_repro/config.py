"""Typed configuration: the schema every YAML file and command-line override is checked against.

Each config group (backbone, pruner, data) has one dataclass per kind, registered in Hydra's
ConfigStore under ``schema/<group>/<name>``; the YAML files in ``conf/<group>/`` extend them, so a
misspelt key or a value of the wrong type fails at start-up, before any training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any  # noqa: UP035  (OmegaConf needs typing.List)

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from fggp_repro.errors import ConfigError


class Init(str, Enum):
    """Initial state of the network before gradual pruning starts."""

    dense = "dense"
    sparse50 = "sparse50"

    def __str__(self) -> str:
        return self.value


INITIAL_DENSITY = {Init.dense: 1.0, Init.sparse50: 0.5}


@dataclass
class VGGConfig:
    name: str = MISSING
    arch: str = "vgg"
    convs_per_stage: list[int] = field(default_factory=lambda: [2, 2, 4, 4, 4])
    widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])


@dataclass
class ResNetConfig:
    name: str = MISSING
    arch: str = "resnet"
    blocks_per_stage: list[int] = field(default_factory=lambda: [3, 4, 6, 3])
    base_width: int = 64
    bottleneck: bool = True


@dataclass
class Cifar10Config:
    name: str = "cifar10"
    root: str = "data"
    download: bool = False


@dataclass
class SyntheticConfig:
    """CIFAR-shaped images whose class is encoded in a smooth per-class template plus noise."""

    name: str = "synthetic"
    train_size: int = 5000
    test_size: int = 1000
    contrast: float = 0.2
    noise: float = 0.45
    data_seed: int = 0


@dataclass
class DenseConfig:
    name: str = "dense"


@dataclass
class GMPConfig:
    name: str = "gmp"


@dataclass
class FGGPConfig:
    name: str = "fggp"
    rate: float = 0.5


@dataclass
class ScheduleConfig:
    """When gradual pruners act: every `interval` iterations from `start_iteration` until
    end_fraction x total iterations, on the cubic schedule of Zhu & Gupta (2017)."""

    interval: int = 2000
    start_iteration: int = 0
    end_fraction: float = 0.8


@dataclass
class OptimConfig:
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    milestones: list[int] = field(default_factory=lambda: [80, 120])
    gamma: float = 0.1
    label_smoothing: float = 0.1


@dataclass
class TrainConfig:
    epochs: int = 160
    batch_size: int = 64
    drop_last: bool = False
    device: str = "auto"
    bf16: bool = False
    eval_every: int = 0
    eval_batch_size: int = 1000
    deterministic: bool = False
    progress: bool = True


@dataclass
class MaskingConfig:
    keep_first_conv_dense: bool = True


@dataclass
class Config:
    backbone: Any = MISSING
    pruner: Any = MISSING
    data: Any = MISSING
    sparsity: float = 0.95
    init: Init = Init.dense
    seed: int = 1
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    output_root: str = "results/runs"
    skip_completed: bool = True


SCHEMAS: dict[str, dict[str, type]] = {
    "backbone": {"vgg": VGGConfig, "resnet": ResNetConfig},
    "data": {"cifar10": Cifar10Config, "synthetic": SyntheticConfig},
    "pruner": {"dense": DenseConfig, "gmp": GMPConfig, "fggp": FGGPConfig},
}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def validate(cfg: Any) -> None:
    """Check the constraints a type cannot express; raise ConfigError with a one-line message."""
    if not 0.0 < cfg.sparsity < 1.0:
        raise ConfigError(f"sparsity must lie strictly between 0 and 1, got {cfg.sparsity}")
    init_density = INITIAL_DENSITY[Init(cfg.init)]
    if cfg.pruner.name != "dense" and 1.0 - cfg.sparsity > init_density:
        raise ConfigError(
            f"init={Init(cfg.init).value} starts at density {init_density}, so the target "
            f"sparsity {cfg.sparsity} (density {1 - cfg.sparsity:.4g}) cannot be reached by pruning"
        )
    pruner = cfg.pruner
    if "rate" in pruner and not 0.0 < pruner.rate <= 1.0:
        raise ConfigError(f"pruner.rate must lie in (0, 1], got {pruner.rate}")
    if cfg.schedule.interval < 1 or cfg.schedule.start_iteration < 0:
        raise ConfigError("schedule.interval must be at least 1 and schedule.start_iteration >= 0")
    if not 0.0 < cfg.schedule.end_fraction <= 1.0:
        raise ConfigError(
            f"schedule.end_fraction must lie in (0, 1], got {cfg.schedule.end_fraction}"
        )
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        raise ConfigError("train.epochs and train.batch_size must be at least 1")
