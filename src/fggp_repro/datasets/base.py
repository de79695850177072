"""What every dataset's options share: the normalisation, the padding of the random crop, and a
held-out tail of the training set (GraNet's `valid_split` keeps its last 10% out of training)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fggp_repro.foundations.options import Choice, bounded


class Padding(Choice):
    """How the random crop pads: zeros (the FGGP authors) or by reflection (GraNet)."""

    zeros = "zeros"
    reflect = "reflect"


@dataclass(frozen=True)
class DataOptions:
    """A dataset subclass gives its per-channel mean and std as defaults, and says how many
    training images it has and what shape they have before loading any (`train_images`,
    `image_shape`), so a config is checked without the data."""

    mean: list[float]
    std: list[float]
    padding: Padding = Padding.zeros
    holdout: float = bounded(0.0, "[0, 1)")

    def train_images(self) -> int:
        """Training images before the held-out tail is taken away."""
        raise NotImplementedError

    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images the loader gives: CIFAR's unless said."""
        return (3, 32, 32)

    def ensure_available(self) -> None:
        """Raise DataError (one line) when the files are missing and cannot be fetched; a
        download happens here, once, before any job of a sweep starts."""


def kept_after_holdout(n_train: int, holdout: float) -> int:
    """Training images left when the last floor(holdout x n) are held out, as GraNet's loader
    splits off its `valid_split`."""
    return n_train - math.floor(holdout * n_train)
