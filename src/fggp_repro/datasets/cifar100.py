"""CIFAR-100 (100 fine classes) through torchvision, the dataset the FGGP authors' script
defaults to and GraNet reports. Mean and std are those of its 50,000 training images."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from fggp_repro.datasets.cifar import CifarOptions, load_cifar

if TYPE_CHECKING:
    from fggp_repro.training.data import ImageData

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


@dataclass(frozen=True)
class Cifar100Options(CifarOptions):
    torchvision_name: ClassVar[str] = "CIFAR100"
    mean: list[float] = field(default_factory=lambda: list(CIFAR100_MEAN))
    std: list[float] = field(default_factory=lambda: list(CIFAR100_STD))


def load_cifar100(root: str = "data", download: bool = False) -> ImageData:
    return load_cifar("CIFAR100", Path(root), download, CIFAR100_MEAN, CIFAR100_STD)


load_cifar100.options = Cifar100Options  # type: ignore[attr-defined]
