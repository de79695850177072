"""CIFAR ResNet as in the FGGP authors' code (LingkaiZhu1999/NetworkPruning,
`archs/cifar10/resnet.py`, `ResNet50()`), which is GraNet's: a 3x3 stride-1 stem without
max-pool, four stages of bottleneck (or basic) blocks, a global average pool (their
`avg_pool2d(out, 4)` on the 4x4 map), and one Linear layer without bias. Every layer keeps
PyTorch's default initialisation, as there.

Their forward ends in log_softmax; cross-entropy applies log_softmax again, which changes nothing
(log_softmax is idempotent), so the logits are returned and the loss is the same.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fggp_repro.foundations.options import bounded, positive_list

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ResNetOptions:
    blocks_per_stage: list[int] = positive_list([3, 4, 6, 3])
    base_width: int = bounded(64, "[1, inf)")
    bottleneck: bool = True


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    from torch import nn

    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]


def _block(in_ch: int, width: int, stride: int, bottleneck: bool) -> tuple[nn.Module, int]:
    """A bottleneck (1x1, 3x3, 1x1 with expansion 4) or basic (3x3, 3x3) residual block, and
    its output channels."""
    from torch import nn

    from fggp_repro.models.layers import Residual

    out_ch = width * 4 if bottleneck else width
    if bottleneck:
        body = [
            *_conv_bn(in_ch, width, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(width, out_ch, 1),
        ]
    else:
        body = [
            *_conv_bn(in_ch, width, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3),
        ]
    shortcut = (
        nn.Sequential(*_conv_bn(in_ch, out_ch, 1, stride))
        if stride != 1 or in_ch != out_ch
        else nn.Identity()
    )
    return Residual(nn.Sequential(*body), shortcut), out_ch


def build_resnet(
    blocks_per_stage: Sequence[int],
    base_width: int = 64,
    bottleneck: bool = True,
    num_classes: int = 10,
    in_channels: int = 3,
) -> nn.Module:
    """stem, blocks (the first of each later stage strides 2), pool, flatten, classifier. The
    global average pool takes images of any size."""
    from torch import nn

    stem = nn.Sequential(
        *_conv_bn(in_channels, base_width, 3), nn.ReLU(inplace=True)
    )  # built first: init order
    blocks: list[nn.Module] = []
    in_ch = base_width
    for stage, n_blocks in enumerate(blocks_per_stage):
        for i in range(n_blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            block, in_ch = _block(in_ch, base_width * 2**stage, stride, bottleneck)
            blocks.append(block)
    return nn.Sequential(
        OrderedDict(
            stem=stem,
            blocks=nn.Sequential(*blocks),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            classifier=nn.Linear(in_ch, num_classes, bias=False),
        )
    )


build_resnet.options = ResNetOptions  # type: ignore[attr-defined]
