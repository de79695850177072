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

from fggp_repro.options import Choice, positive_list

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


def build_vgg(
    convs_per_stage: Sequence[int],
    widths: Sequence[int],
    conv_bias: bool = True,
    conv_init: str = "fan_in",
    num_classes: int = 10,
) -> nn.Module:
    """features (conv-BN-ReLU stages, max-pools between them), pool, flatten, classifier."""
    from torch import nn

    layers: list[nn.Module] = []
    in_channels = 3
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
