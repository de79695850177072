"""Datasets as uint8 tensors resident on the training device, with batched augmentation.

A CIFAR-sized dataset fits in GPU memory (150 MB), so each minibatch is an index into device memory
plus one fused crop-and-flip: no DataLoader workers, no per-image PIL transforms, no host copies.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fggp_repro.dataset_facts import CIFAR10_MEAN, CIFAR10_STD, kept_after_holdout
from fggp_repro.errors import DataError

CIFAR10_FILES = "cifar-10-batches-py"


@dataclass
class ImageData:
    """Train and test images (N, 3, 32, 32) uint8 with int64 labels, on one device."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    synthetic: bool
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD
    padding_mode: str = "zeros"
    _affine: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 (N, 3, H, W) to float, per-channel standardised: one multiply-add with constants
        made once on the images' device, (x / 255 - mean) / std = x * scale + shift."""
        if self._affine is None or self._affine[0].device != images.device:
            std = torch.tensor(self.std, dtype=torch.float64)
            scale = (1.0 / (255.0 * std)).float().view(1, -1, 1, 1).to(images.device)
            shift = (-torch.tensor(self.mean, dtype=torch.float64) / std).float()
            self._affine = (scale, shift.view(1, -1, 1, 1).to(images.device))
        scale, shift = self._affine
        return torch.addcmul(shift, images.float(), scale)

    def to(self, device: torch.device) -> ImageData:
        moved = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "test_x", "test_y")}
        return replace(self, **moved)


def load_data(cfg: Any) -> ImageData:
    """Load the dataset a `data` config names, with its normalisation, crop padding and held-out
    tail applied."""
    if cfg.name == "cifar10":
        data = load_cifar10(Path(cfg.root), download=cfg.download)
    elif cfg.name == "synthetic":
        data = make_synthetic(
            cfg.train_size, cfg.test_size, cfg.noise, cfg.data_seed, contrast=cfg.contrast
        )
    else:
        raise DataError(f"unknown dataset '{cfg.name}'")
    kept = kept_after_holdout(data.train_x.shape[0], cfg.get("holdout", 0.0))
    return replace(
        data, train_x=data.train_x[:kept], train_y=data.train_y[:kept],
        mean=tuple(cfg.get("mean", CIFAR10_MEAN)), std=tuple(cfg.get("std", CIFAR10_STD)),
        padding_mode=str(cfg.get("padding", "zeros")),
    )  # fmt: skip


def load_cifar10(root: Path, download: bool = False) -> ImageData:
    """CIFAR-10 through torchvision; a missing copy offline is a one-line DataError."""
    from torchvision.datasets import CIFAR10

    if not download and not (root / CIFAR10_FILES).is_dir():
        raise DataError(
            f"CIFAR-10 not found: expected {root.resolve() / CIFAR10_FILES}/ "
            "(unpack cifar-10-python.tar.gz there, set data.root=<dir>, or add data.download=true)"
        )
    try:
        train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=download)
    except (OSError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"CIFAR-10 could not be loaded from {root.resolve()}: {reason}") from None

    def as_tensors(split: Any) -> tuple[Tensor, Tensor]:
        images = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(split.targets, dtype=torch.int64)

    train_x, train_y = as_tensors(train)
    test_x, test_y = as_tensors(test)
    return ImageData(train_x, train_y, test_x, test_y, num_classes=10, synthetic=False)


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
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, 3, 4, 4, generator=generator)
    smooth = F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    templates = 0.5 + contrast * (smooth - 0.5)

    def draw(n: int) -> tuple[Tensor, Tensor]:
        labels = torch.randint(num_classes, (n,), generator=generator)
        pixels = templates[labels] + noise * torch.randn(n, 3, 32, 32, generator=generator)
        return (pixels.clamp(0, 1) * 255).round().to(torch.uint8), labels

    train_x, train_y = draw(train_size)
    test_x, test_y = draw(test_size)
    return ImageData(train_x, train_y, test_x, test_y, num_classes=num_classes, synthetic=True)


def random_crop_flip(
    images: Tensor, generator: torch.Generator, padding: int = 4, padding_mode: str = "zeros"
) -> Tensor:
    """Pad by `padding` (with zeros, or by reflection as GraNet does), take a random same-size
    crop per image and flip half of them, like torchvision's RandomCrop(padding) +
    RandomHorizontalFlip, for the whole batch at once."""
    n, device = images.shape[0], images.device
    dy = torch.randint(0, 2 * padding + 1, (n,), device=device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=device, generator=generator)
    flip = torch.rand(n, device=device, generator=generator) < 0.5
    return crop_flip(images, dy, dx, flip, padding, padding_mode)


def crop_flip(
    images: Tensor, dy: Tensor, dx: Tensor, flip: Tensor, padding: int, padding_mode: str = "zeros"
) -> Tensor:
    """Image i cropped at offset (dy[i], dx[i]) of its padded copy, then mirrored if flip[i]:
    one gather for the whole batch."""
    n, c, h, w = images.shape
    batch, channel, row, col, mirrored = _index_grid(n, c, h, w, images.device)
    padded = F.pad(
        images, (padding,) * 4, mode="constant" if padding_mode == "zeros" else "reflect"
    )
    rows = dy.view(n, 1, 1, 1) + row
    cols = torch.where(flip.view(n, 1, 1, 1), mirrored, col) + dx.view(n, 1, 1, 1)
    return padded[batch, channel, rows, cols]


@functools.cache
def _index_grid(n: int, c: int, h: int, w: int, device: torch.device) -> tuple[Tensor, ...]:
    """The constant index tensors of a batch shape, made once per shape and device rather
    than every batch."""
    return (
        torch.arange(n, device=device).view(n, 1, 1, 1),
        torch.arange(c, device=device).view(1, c, 1, 1),
        torch.arange(h, device=device).view(1, 1, h, 1),
        torch.arange(w, device=device).view(1, 1, 1, w),
        torch.arange(w - 1, -1, -1, device=device).view(1, 1, 1, w),
    )


def train_batches(
    data: ImageData,
    batch_size: int,
    generator: torch.Generator,
    drop_last: bool = False,
    order: Tensor | None = None,
    start: int = 0,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of shuffled, augmented, normalised minibatches. A resumed epoch passes its data
    `order` and the number of batches already done (`start`); augmentation draws from
    `generator` batch by batch, so restoring its state there continues the same stream."""
    n = data.train_x.shape[0]
    if order is None:
        order = torch.randperm(n, device=data.train_x.device, generator=generator)
    stop = n - n % batch_size if drop_last else n
    for begin in range(start * batch_size, stop, batch_size):
        index = order[begin : begin + batch_size]
        images = random_crop_flip(data.train_x[index], generator, padding_mode=data.padding_mode)
        normalized = data.normalize(images).contiguous(memory_format=memory_format)
        yield normalized, data.train_y[index]


def iterations_per_epoch(n_train: int, batch_size: int, drop_last: bool) -> int:
    return n_train // batch_size if drop_last else -(-n_train // batch_size)
