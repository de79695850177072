"""Typed configuration: the schema every YAML file and command-line override is checked against.

Each config group (backbone, pruner, data) has one dataclass per kind, registered in Hydra's
ConfigStore under ``schema/<group>/<name>``; the YAML files in ``conf/<group>/`` extend them, so a
misspelt key or a value of the wrong type fails at start-up, before any training.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from fggp_repro.dataset_facts import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR10_TRAIN_IMAGES,
    kept_after_holdout,
)
from fggp_repro.errors import ConfigError
from fggp_repro.schedule import CubicSchedule, update_steps


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


class Padding(str, Enum):
    """How the random crop pads: zeros (the FGGP authors) or by reflection (GraNet)."""

    zeros = "zeros"
    reflect = "reflect"

    def __str__(self) -> str:
        return self.value


@dataclass
class DataSchema:
    """What every dataset shares: the normalisation, the padding of the random crop, and a
    held-out tail of the training set (GraNet's `valid_split` keeps its last 10% out of
    training)."""

    name: str = MISSING
    mean: list[float] = field(default_factory=lambda: list(CIFAR10_MEAN))
    std: list[float] = field(default_factory=lambda: list(CIFAR10_STD))
    padding: Padding = Padding.zeros
    holdout: float = 0.0


@dataclass
class Cifar10Config(DataSchema):
    name: str = "cifar10"
    root: str = "data"
    download: bool = False


@dataclass
class SyntheticConfig(DataSchema):
    """CIFAR-shaped images whose class is encoded in a smooth per-class template plus noise."""

    name: str = "synthetic"
    train_size: int = 2000
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


@dataclass(frozen=True)
class PrunerTraits:
    """Which settings mean something for a pruner: the target sparsity, the dense / sparse50
    initial state, and the `schedule` group. An unused one is refused (`init`) or ignored, and
    left out of the run's identity and directory."""

    uses_target: bool = True
    uses_initial_state: bool = True
    uses_schedule: bool = True
    reads_dense_gradient: bool = False  # regrows by the dense gradient (training FLOPs)


# Each pruner schema carries its traits as a ClassVar (not a config key).
@dataclass
class GradualPrunerSchema:
    """Methods that prune gradually from the initial state towards the target."""

    traits: ClassVar[PrunerTraits] = PrunerTraits()
    name: str = MISSING


@dataclass
class OwnStartSchema(GradualPrunerSchema):
    """Methods that set their own starting mask at the target, so the initial-state axis means
    nothing for them: sparse training keeps updating it on the schedule."""

    traits: ClassVar[PrunerTraits] = PrunerTraits(uses_initial_state=False)


@dataclass
class AtInitSchema(GradualPrunerSchema):
    """Pruning at initialisation: one mask before training, no schedule."""

    traits: ClassVar[PrunerTraits] = PrunerTraits(uses_initial_state=False, uses_schedule=False)


@dataclass
class DenseConfig(GradualPrunerSchema):
    traits: ClassVar[PrunerTraits] = PrunerTraits(
        uses_target=False, uses_initial_state=False, uses_schedule=False
    )
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

    @staticmethod
    def unused_options(cfg: Any) -> list[str]:
        """A fixed rate never anneals, so its final rate is not part of the experiment."""
        return ["final_rate"] if RatePolicy(cfg.rate_policy) is RatePolicy.fixed else []


@dataclass
class GraNetConfig(GradualPrunerSchema):
    name: str = "granet"
    traits: ClassVar[PrunerTraits] = PrunerTraits(reads_dense_gradient=True)
    initial_rate: float = 0.5
    final_rate: float = 0.005
    end_fraction: float = 0.5


class Rounding(str, Enum):
    """How a fraction of a layer's active weights becomes a count."""

    round = "round"
    ceil = "ceil"

    def __str__(self) -> str:
        return self.value


@dataclass
class RegrowthConfig(OwnStartSchema):
    """RigL and SET: constant sparsity from an ERK start at the target density. The defaults are
    Evci et al.'s; GraNet's "DST" variant is drop_fraction 0.5, final_drop_fraction 0.005,
    drop_rounding ceil, end_fraction 1 (what `protocol=granet` sets)."""

    drop_fraction: float = 0.3
    final_drop_fraction: float = 0.0
    drop_rounding: Rounding = Rounding.round
    end_fraction: float = 0.75


@dataclass
class RigLConfig(RegrowthConfig):
    traits: ClassVar[PrunerTraits] = PrunerTraits(
        uses_initial_state=False, reads_dense_gradient=True
    )
    name: str = "rigl"


@dataclass
class SETConfig(RegrowthConfig):
    name: str = "set"


@dataclass
class SNIPConfig(AtInitSchema):
    name: str = "snip"
    batches: int = 1


@dataclass
class GraSPConfig(AtInitSchema):
    name: str = "grasp"
    batches: int = 1
    temperature: float = 200.0


@dataclass
class SynFlowConfig(AtInitSchema):
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


class CompileMode(str, Enum):
    """How a step runs: eager PyTorch, or torch.compile in one of its modes; auto is
    reduce-overhead (compiled, with CUDA graphs) on a GPU and eager elsewhere."""

    auto = "auto"
    none = "none"
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"

    def __str__(self) -> str:
        return self.value


@dataclass
class TrainConfig:
    epochs: int = 160
    batch_size: int = 64
    drop_last: bool = False
    device: str = "auto"
    bf16: bool = False
    compile: CompileMode = CompileMode.auto
    channels_last: bool | None = None  # None: on a GPU, not on a CPU
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
class CheckpointConfig:
    """Training state written every `every` epochs (0: never) and on preemption; the newest
    `keep` are kept. `save_model` writes the final weights and masks to model.pt."""

    every: int = 1
    keep: int = 2
    save_model: bool = True


@dataclass
class MaskingConfig:
    keep_first_conv_dense: bool = True
    density_base: DensityBase = DensityBase.conv_linear


@dataclass
class ProtocolConfig:
    """Which published protocol the settings follow (`conf/protocol/`), named in every record so
    that comparisons with published numbers can say whether like is compared with like.
    `best_test_after_pruning` also records GraNet's headline figure, the best test accuracy over
    the epochs after the pruning window: selected on test, so never the main figure."""

    name: str = "fggp_authors"
    best_test_after_pruning: bool = False


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
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
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
        "rigl": RigLConfig,
        "set": SETConfig,
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


def pruner_schema(pruner_cfg: Any) -> type | None:
    """The schema dataclass a composed pruner config extends."""
    return OmegaConf.get_type(pruner_cfg)


def unused_pruner_options(pruner_cfg: Any) -> list[str]:
    """Options of this pruner config that its settings leave without effect (not part of the
    run's identity)."""
    rule = getattr(pruner_schema(pruner_cfg), "unused_options", None)
    return rule(pruner_cfg) if rule is not None else []


def pruner_traits(pruner_cfg: Any) -> PrunerTraits:
    """The traits of a composed pruner config's schema."""
    return getattr(pruner_schema(pruner_cfg), "traits", PrunerTraits())


DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

#: numeric settings and their natural ranges; keys a composed config lacks are skipped
RANGES: list[tuple[str, Callable[[float], bool], str]] = [
    ("seed", lambda v: v >= 0, ">= 0"),
    ("optim.lr", lambda v: v > 0, "> 0"),
    ("optim.momentum", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("optim.weight_decay", lambda v: v >= 0, ">= 0"),
    ("optim.gamma", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("optim.label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("train.epochs", lambda v: v >= 1, ">= 1"),
    ("train.batch_size", lambda v: v >= 1, ">= 1"),
    ("train.eval_every", lambda v: v >= 0, ">= 0 (0: test after the last epoch only)"),
    ("train.eval_batch_size", lambda v: v >= 1, ">= 1"),
    ("schedule.interval", lambda v: v >= 1, ">= 1"),
    ("schedule.start_iteration", lambda v: v >= 0, ">= 0"),
    ("schedule.end_fraction", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("checkpoint.every", lambda v: v >= 0, ">= 0 (0: never)"),
    ("checkpoint.keep", lambda v: v >= 1, ">= 1"),
    ("data.train_size", lambda v: v >= 1, ">= 1"),
    ("data.test_size", lambda v: v >= 1, ">= 1"),
    ("data.contrast", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("data.noise", lambda v: v >= 0, ">= 0"),
    ("data.data_seed", lambda v: v >= 0, ">= 0"),
    ("pruner.rate", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("pruner.final_rate", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("pruner.initial_rate", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("pruner.drop_fraction", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("pruner.final_drop_fraction", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("data.holdout", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("pruner.end_fraction", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("pruner.batches", lambda v: v >= 1, ">= 1"),
    ("pruner.rounds", lambda v: v >= 1, ">= 1"),
    ("pruner.temperature", lambda v: v > 0, "> 0"),
    ("backbone.base_width", lambda v: v >= 1, ">= 1"),
]
#: lists whose every entry must be a positive integer
POSITIVE_LISTS = (
    "optim.milestones", "backbone.convs_per_stage", "backbone.widths", "backbone.blocks_per_stage",
)  # fmt: skip


def train_set_size(data_cfg: Any) -> int:
    """Training images after the held-out tail is taken away."""
    n = CIFAR10_TRAIN_IMAGES if data_cfg.name == "cifar10" else int(data_cfg.train_size)
    return kept_after_holdout(n, data_cfg.get("holdout", 0.0))


def total_iterations(cfg: Any) -> int:
    n, batch = train_set_size(cfg.data), cfg.train.batch_size
    per_epoch = n // batch if cfg.train.drop_last else -(-n // batch)
    return cfg.train.epochs * per_epoch


def validate(cfg: Any) -> None:
    """Check what a type cannot express; raise ConfigError with a one-line message."""
    for key, in_range, expected in RANGES:
        value = OmegaConf.select(cfg, key)
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value}")
        if value is not None and not in_range(value):
            raise ConfigError(f"{key} must be {expected}, got {value}")
    n_train = train_set_size(cfg.data)
    if n_train < 1:
        raise ConfigError(f"data.holdout={cfg.data.holdout} leaves no training image")
    if not str(cfg.output_root).strip():
        raise ConfigError("output_root is empty: name a directory (default results/runs)")
    if cfg.train.batch_size > n_train:
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size} is larger than the {n_train} training "
            "images: lower it"
        )
    for key in POSITIVE_LISTS:
        values = OmegaConf.select(cfg, key)
        if values is not None and (not len(values) or min(values) < 1):
            raise ConfigError(f"{key} must be a list of integers >= 1, got {list(values)}")
    if not 0.0 < cfg.sparsity < 1.0:
        raise ConfigError(f"sparsity must lie strictly between 0 and 1, got {cfg.sparsity}")
    for key in ("data.mean", "data.std"):
        values = OmegaConf.select(cfg, key)
        if values is not None and (len(values) != 3 or (key == "data.std" and min(values) <= 0)):
            raise ConfigError(f"{key} must be 3 per-channel values (std > 0), got {list(values)}")
    if cfg.protocol.best_test_after_pruning and cfg.train.eval_every != 1:
        raise ConfigError(
            "protocol.best_test_after_pruning needs the test accuracy of every epoch: set "
            "train.eval_every=1"
        )
    if not DEVICE_PATTERN.fullmatch(cfg.train.device):
        raise ConfigError(
            f"train.device must be auto, cpu, cuda or cuda:<index>, got '{cfg.train.device}'"
        )
    pruner = cfg.pruner
    traits = pruner_traits(pruner)
    init = Init(cfg.init)
    if not traits.uses_initial_state and init is not Init.dense:
        raise ConfigError(
            f"pruner={pruner.name} has no initial-state axis (it sets its own starting mask), so "
            f"init={init.value} means nothing for it: run it with init=dense, which its record "
            "reports as init: n/a"
        )
    if traits.uses_target and traits.uses_initial_state:
        if 1.0 - cfg.sparsity > INITIAL_DENSITY[init]:
            raise ConfigError(
                f"init={init.value} starts at density {INITIAL_DENSITY[init]}, so the target "
                f"sparsity {cfg.sparsity} (density {1 - cfg.sparsity:.4g}) cannot be reached by "
                "pruning"
            )
        end_fraction = pruner.get("end_fraction", cfg.schedule.end_fraction)
        try:
            CubicSchedule.build(
                total_iterations(cfg), 1.0, 0.5, cfg.schedule.interval,
                cfg.schedule.start_iteration, end_fraction,
            )  # fmt: skip
        except ValueError as error:
            raise ConfigError(f"{error}: lower schedule.interval or raise train.epochs") from None
    schema = pruner_schema(pruner)
    if isinstance(schema, type) and issubclass(schema, RegrowthConfig):
        total = total_iterations(cfg)
        end = math.floor(pruner.end_fraction * total)
        if not update_steps(cfg.schedule.interval, cfg.schedule.start_iteration, end):
            raise ConfigError(
                f"pruner={pruner.name} would never update its mask: no multiple of "
                f"schedule.interval={cfg.schedule.interval} lies after iteration "
                f"{cfg.schedule.start_iteration} and before {end} (pruner.end_fraction="
                f"{pruner.end_fraction} of {total}); lower schedule.interval or raise "
                "train.epochs"
            )
