"""Typed configuration: the schema every YAML file and command-line override is checked against.

Each config group (backbone, pruner, data) has one dataclass per kind, registered in Hydra's
ConfigStore under ``schema/<group>/<name>``; the YAML files in ``conf/<group>/`` extend them, so a
misspelt key or a value of the wrong type fails at start-up, before any training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from fggp_repro.errors import ConfigError


class Init(str, Enum):
    """Initial state of the network before gradual pruning starts."""

    dense = "dense"
    sparse50 = "sparse50"

    def __str__(self) -> str:
        return self.value


INITIAL_DENSITY = {Init.dense: 1.0, Init.sparse50: 0.5}


class ConvInit(str, Enum):
    """N(0, sqrt(2 / fan)) for VGG's convs: fan-in (the FGGP authors') or fan-out (GraNet's)."""

    fan_in = "fan_in"
    fan_out = "fan_out"

    def __str__(self) -> str:
        return self.value


@dataclass
class VGGConfig:
    name: str = MISSING
    arch: str = "vgg"
    convs_per_stage: list[int] = field(default_factory=lambda: [2, 2, 4, 4, 4])
    widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])
    conv_bias: bool = True
    conv_init: ConvInit = ConvInit.fan_in


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


class Order(str, Enum):
    """Which criterion picks the candidates in two-stage selection."""

    gradient_first = "gradient_first"
    magnitude_first = "magnitude_first"

    def __str__(self) -> str:
        return self.value


class RatePolicy(str, Enum):
    """Fixed candidate rate, or cosine-annealed over training."""

    fixed = "fixed"
    annealed = "annealed"

    def __str__(self) -> str:
        return self.value


# Each pruner schema says which of the paper's axes mean something for it (ClassVars are not
# config keys): a target sparsity, and the dense / sparse50 initial state.
@dataclass
class GradualPrunerSchema:
    """Methods that prune gradually from the initial state towards the target."""

    uses_target: ClassVar[bool] = True
    uses_initial_state: ClassVar[bool] = True
    name: str = MISSING


@dataclass
class OwnStartSchema(GradualPrunerSchema):
    """Methods that set their own starting mask at the target (sparse training, pruning at
    initialisation), so the initial-state axis means nothing for them."""

    uses_initial_state: ClassVar[bool] = False


@dataclass
class DenseConfig(OwnStartSchema):
    uses_target: ClassVar[bool] = False
    name: str = "dense"


@dataclass
class GMPConfig(GradualPrunerSchema):
    name: str = "gmp"


@dataclass
class TwoStageConfig(GradualPrunerSchema):
    order: Order = Order.gradient_first
    rate_policy: RatePolicy = RatePolicy.fixed
    rate: float = 0.5
    final_rate: float = 0.005


@dataclass
class GraNetConfig(GradualPrunerSchema):
    name: str = "granet"
    initial_rate: float = 0.5
    final_rate: float = 0.005
    end_fraction: float = 0.5


@dataclass
class RegrowthConfig(OwnStartSchema):
    """RigL and SET: constant sparsity from an ERK start at the target density."""

    drop_fraction: float = 0.3
    end_fraction: float = 0.75


@dataclass
class SNIPConfig(OwnStartSchema):
    name: str = "snip"
    batches: int = 1


@dataclass
class GraSPConfig(OwnStartSchema):
    name: str = "grasp"
    batches: int = 1
    temperature: float = 200.0


@dataclass
class SynFlowConfig(OwnStartSchema):
    name: str = "synflow"
    rounds: int = 100


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


class DensityBase(str, Enum):
    """What a density (and FGGP's |A|) is counted over: every Conv2d/Linear parameter, biases
    and the dense first conv included (the FGGP authors' code), or the prunable weights only."""

    conv_linear = "conv_linear"
    prunable = "prunable"

    def __str__(self) -> str:
        return self.value


@dataclass
class MaskingConfig:
    keep_first_conv_dense: bool = True
    density_base: DensityBase = DensityBase.conv_linear


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
    "pruner": {
        "dense": DenseConfig,
        "gmp": GMPConfig,
        "two_stage": TwoStageConfig,
        "granet": GraNetConfig,
        "regrowth": RegrowthConfig,
        "snip": SNIPConfig,
        "grasp": GraSPConfig,
        "synflow": SynFlowConfig,
    },
}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def pruner_axes(pruner_cfg: Any) -> tuple[bool, bool]:
    """(uses_target, uses_initial_state) of a composed pruner config."""
    schema = OmegaConf.get_type(pruner_cfg)
    return getattr(schema, "uses_target", True), getattr(schema, "uses_initial_state", True)


def validate(cfg: Any) -> None:
    """Check the constraints a type cannot express; raise ConfigError with a one-line message."""
    if not 0.0 < cfg.sparsity < 1.0:
        raise ConfigError(f"sparsity must lie strictly between 0 and 1, got {cfg.sparsity}")
    pruner = cfg.pruner
    uses_target, uses_initial_state = pruner_axes(pruner)
    init = Init(cfg.init)
    if not uses_initial_state and init is not Init.dense:
        raise ConfigError(
            f"pruner={pruner.name} has no initial-state axis (it sets its own starting mask), so "
            f"init={init.value} means nothing for it: run it with init=dense, which its record "
            "reports as init: n/a"
        )
    if uses_target and uses_initial_state and 1.0 - cfg.sparsity > INITIAL_DENSITY[init]:
        raise ConfigError(
            f"init={init.value} starts at density {INITIAL_DENSITY[init]}, so the target "
            f"sparsity {cfg.sparsity} (density {1 - cfg.sparsity:.4g}) cannot be reached by pruning"
        )
    for key in ("rate", "final_rate", "initial_rate", "drop_fraction", "end_fraction"):
        if key in pruner and not 0.0 < pruner[key] <= 1.0:
            raise ConfigError(f"pruner.{key} must lie in (0, 1], got {pruner[key]}")
    for key in ("batches", "rounds"):
        if key in pruner and pruner[key] < 1:
            raise ConfigError(f"pruner.{key} must be at least 1, got {pruner[key]}")
    if cfg.schedule.interval < 1 or cfg.schedule.start_iteration < 0:
        raise ConfigError("schedule.interval must be at least 1 and schedule.start_iteration >= 0")
    if not 0.0 < cfg.schedule.end_fraction <= 1.0:
        raise ConfigError(
            f"schedule.end_fraction must lie in (0, 1], got {cfg.schedule.end_fraction}"
        )
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        raise ConfigError("train.epochs and train.batch_size must be at least 1")
