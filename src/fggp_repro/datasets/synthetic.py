"""CIFAR-shaped synthetic data, generated offline: the demo's and the tests' dataset. With
`num_classes` 100 it stands in for CIFAR-100."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fggp_repro.datasets.base import DataOptions
from fggp_repro.datasets.cifar import CIFAR10_MEAN, CIFAR10_STD
from fggp_repro.foundations.options import bounded

if TYPE_CHECKING:
    from fggp_repro.training.data import ImageData


@dataclass(frozen=True)
class SyntheticOptions(DataOptions):
    """Images whose class is encoded in a smooth per-class template plus noise, normalised
    with CIFAR-10's constants as the network would be on CIFAR-10."""

    mean: list[float] = field(default_factory=lambda: list(CIFAR10_MEAN))
    std: list[float] = field(default_factory=lambda: list(CIFAR10_STD))

    train_size: int = bounded(2000, "[1, inf)")
    test_size: int = bounded(1000, "[1, inf)")
    num_classes: int = bounded(10, "[2, inf)")
    contrast: float = bounded(0.2, "(0, 1]")
    noise: float = bounded(0.45, "[0, inf)")
    data_seed: int = bounded(0, "[0, inf)")

    def train_images(self) -> int:
        return self.train_size


def make_synthetic(
    train_size: int,
    test_size: int,
    noise: float = 0.45,
    seed: int = 0,
    num_classes: int = 10,
    contrast: float = 0.2,
) -> ImageData:
    """CIFAR-shaped images: a smooth random colour template per class plus pixel noise.

    Smooth templates survive the random crop and flip, so a small CNN learns the task well above
    chance within a few epochs, while noise keeps it from being trivial.
    """
    import torch
    import torch.nn.functional as F

    from fggp_repro.training.data import ImageData

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, 3, 4, 4, generator=generator)
    smooth = F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    templates = 0.5 + contrast * (smooth - 0.5)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(num_classes, (n,), generator=generator)
        pixels = templates[labels] + noise * torch.randn(n, 3, 32, 32, generator=generator)
        return (pixels.clamp(0, 1) * 255).round().to(torch.uint8), labels

    train_x, train_y = draw(train_size)
    test_x, test_y = draw(test_size)
    return ImageData(
        train_x, train_y, test_x, test_y, num_classes=num_classes, synthetic=True,
        mean=CIFAR10_MEAN, std=CIFAR10_STD,
    )  # fmt: skip


def load_synthetic(
    train_size: int = 2000,
    test_size: int = 1000,
    num_classes: int = 10,
    contrast: float = 0.2,
    noise: float = 0.45,
    data_seed: int = 0,
) -> ImageData:
    return make_synthetic(train_size, test_size, noise, data_seed, num_classes, contrast)


load_synthetic.options = SyntheticOptions  # type: ignore[attr-defined]
