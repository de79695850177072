"""Datasets as uint8 tensors resident on the training device, with batched augmentation.

A CIFAR-sized dataset fits in GPU memory (150 MB), so each minibatch is an index into device memory
plus one fused crop-and-flip: no DataLoader workers, no per-image PIL transforms, no host copies.
Images have any shape (channels, height, width) their dataset states; CIFAR's is 3 x 32 x 32.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from fggp_repro.datasets.base import DataOptions, kept_after_holdout
from fggp_repro.foundations.errors import DataError
from fggp_repro.foundations.spec import PluginSpec


@dataclass
class ImageData:
    """Train and test images (N, C, H, W) uint8 with int64 labels, on one device, and the
    per-channel mean and std that normalise them (each dataset's own: no default)."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    synthetic: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    padding_mode: str = "zeros"
    _affine: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        channels, height, width = self.train_x.shape[1:]
        return int(channels), int(height), int(width)

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 (N, C, H, W) to float, per-channel standardised: one multiply-add with constants
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


def load_data(spec: PluginSpec) -> ImageData:
    """Load the dataset a data spec names (its loader gets the options that are its own), then
    apply what every dataset shares: the normalisation, crop padding and held-out tail."""
    options = spec.options
    shared = {f.name for f in fields(DataOptions)}
    own = {f.name: getattr(options, f.name) for f in fields(options) if f.name not in shared}
    data = spec.builder(**own)
    stated = tuple(options.image_shape())
    if data.image_shape != stated or data.test_x.shape[1:] != data.train_x.shape[1:]:
        raise DataError(
            f"data={spec.name} loaded images of {shape_text(data.image_shape)} (test "
            f"{shape_text(tuple(data.test_x.shape[1:]))}), and its options state "
            f"{shape_text(stated)}: its options' image_shape() must say what it loads"
        )
    kept = kept_after_holdout(data.train_x.shape[0], options.holdout)
    return replace(
        data, train_x=data.train_x[:kept], train_y=data.train_y[:kept],
        mean=tuple(options.mean), std=tuple(options.std), padding_mode=str(options.padding),
    )  # fmt: skip


def shape_text(shape: tuple[int, ...]) -> str:
    """(1, 28, 28) as "1x28x28"."""
    return "x".join(str(int(n)) for n in shape)


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


def _index_grid(n: int, c: int, h: int, w: int, device: torch.device) -> tuple[Tensor, ...]:
    """The index tensors of a batch shape, broadcast against each other by the gather."""
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
