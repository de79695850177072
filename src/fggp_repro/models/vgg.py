"""CIFAR VGG with batch norm, as in the FGGP authors' code (LingkaiZhu1999/NetworkPruning,
`archs/cifar10/vgg.py`, `vgg19_bn`): stages of 3x3 conv + BN + ReLU with a 2x2 max-pool between
stages (config E: four), a 2x2 average pool on the last 2x2 map, then one Linear layer.

The authors' convs carry a bias and start from N(0, sqrt(2 / (3 * 3 * C_in))) (fan-in); the Linear
layer from N(0, 0.01) with bias 0. GraNet's VGG (VITA-Group/GraNet, `CIFAR/models/vgg.py`) is the
same network without conv biases and with Kaiming fan-out conv init: `conv_bias` and `conv_init`
select it, so published GraNet cells can be compared like for like.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.options import Choice, positive_list

if TYPE_CHECKING:
    from torch import nn


class ConvInit(Choice):
    """N(0, sqrt(2 / fan)) for the convs: fan-in (the FGGP authors') or fan-out (GraNet's)."""

    fan_in = "fan_in"
    fan_out = "fan_out"


@dataclass(frozen=True)
class VGGOptions:
    convs_per_stage: list[int] = positive_list([2, 2, 4, 4, 4])
    widths: list[int] = positive_list([64, 128, 256, 512, 512])
    conv_bias: bool = True
    conv_init: ConvInit = ConvInit.fan_in


def check_vgg_input(options: VGGOptions, image_shape: tuple[int, int, int]) -> None:
    """The classifier takes exactly the last stage's width: after the max-pools between stages
    (each halving, rounding down) the 2x2 average pool must leave a 1x1 map, so each side must
    come out of the pools at 2 or 3 pixels (32 to 63 for VGG-19's four pools)."""
    pools = len(options.convs_per_stage) - 1
    low, high = 2 * 2**pools, 4 * 2**pools - 1
    _, height, width = image_shape
    if not (low <= height <= high and low <= width <= high):
        raise ConfigError(
            f"takes images of {low} to {high} pixels a side (its {pools} max-pools and 2x2 "
            f"average pool must leave a 1x1 map), and the data's are {height}x{width}: pad or "
            "resize them in the dataset, or use a backbone that takes any size (resnet50)"
        )


def build_vgg(
    convs_per_stage: Sequence[int],
    widths: Sequence[int],
    conv_bias: bool = True,
    conv_init: str = "fan_in",
    num_classes: int = 10,
    in_channels: int = 3,
) -> nn.Module:
    """features (conv-BN-ReLU stages, max-pools between them), pool, flatten, classifier."""
    from torch import nn

    layers: list[nn.Module] = []
    for stage, (n_convs, width) in enumerate(zip(convs_per_stage, widths, strict=True)):
        if stage > 0:
            layers.append(nn.MaxPool2d(2))
        for _ in range(n_convs):
            layers += [
                nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=conv_bias),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
    model = nn.Sequential(
        OrderedDict(
            features=nn.Sequential(*layers),
            pool=nn.AvgPool2d(2),
            flatten=nn.Flatten(),
            classifier=nn.Linear(in_channels, num_classes),
        )
    )
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            channels = module.in_channels if str(conv_init) == "fan_in" else module.out_channels
            fan = module.kernel_size[0] * module.kernel_size[1] * channels
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)
    return model


build_vgg.options = VGGOptions  # type: ignore[attr-defined]
build_vgg.check_input = check_vgg_input  # type: ignore[attr-defined]
