"""What the configuration needs to know about a dataset before any of it is loaded: its size,
its normalisation constants, and how a held-out tail is split off. No torch here, so the command
line can check a config (and refuse it) without paying for importing torch."""

from __future__ import annotations

import math

CIFAR10_TRAIN_IMAGES = 50_000
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
# the FGGP authors' data.py; GraNet's std is (0.2023, 0.1994, 0.2010)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def kept_after_holdout(n_train: int, holdout: float) -> int:
    """Training images left when the last floor(holdout x n) are held out, as GraNet's loader
    splits off its `valid_split`."""
    return n_train - math.floor(holdout * n_train)
