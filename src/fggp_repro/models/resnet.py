"""CIFAR ResNet as in the FGGP authors' code (LingkaiZhu1999/NetworkPruning,
`archs/cifar10/resnet.py`, `ResNet50()`), which is GraNet's: a 3x3 stride-1 stem without
max-pool, four stages of bottleneck (or basic) blocks, a global average pool (their
`avg_pool2d(out, 4)` on the 4x4 map), and one Linear layer without bias. Every layer keeps
PyTorch's default initialisation, as there.

Their forward ends in log_softmax; cross-entropy applies log_softmax again, which changes nothing
(log_softmax is idempotent), so the logits are returned and the loss is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from fggp_repro.options import bounded, positive_list


@dataclass(frozen=True)
class ResNetOptions:
    blocks_per_stage: list[int] = positive_list([3, 4, 6, 3])
    base_width: int = bounded(64, "[1, inf)")
    bottleneck: bool = True


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]


class Block(nn.Module):
    """Bottleneck (1x1, 3x3, 1x1 with expansion 4) or basic (3x3, 3x3) residual block."""

    def __init__(self, in_ch: int, width: int, stride: int, bottleneck: bool):
        super().__init__()
        self.out_channels = width * 4 if bottleneck else width
        if bottleneck:
            body = [
                *_conv_bn(in_ch, width, 1),
                nn.ReLU(inplace=True),
                *_conv_bn(width, width, 3, stride),
                nn.ReLU(inplace=True),
                *_conv_bn(width, self.out_channels, 1),
            ]
        else:
            body = [
                *_conv_bn(in_ch, width, 3, stride),
                nn.ReLU(inplace=True),
                *_conv_bn(width, width, 3),
            ]
        self.body = nn.Sequential(*body)
        self.shortcut = (
            nn.Sequential(*_conv_bn(in_ch, self.out_channels, 1, stride))
            if stride != 1 or in_ch != self.out_channels
            else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self, blocks_per_stage: Sequence[int], base_width: int, bottleneck: bool, num_classes: int
    ):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, base_width, 3), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        in_ch = base_width
        for stage, n_blocks in enumerate(blocks_per_stage):
            width = base_width * 2**stage
            for i in range(n_blocks):
                block = Block(in_ch, width, 2 if stage > 0 and i == 0 else 1, bottleneck)
                blocks.append(block)
                in_ch = block.out_channels
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_ch, num_classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.blocks(self.stem(x))).flatten(1))


def build_resnet(
    blocks_per_stage: Sequence[int],
    base_width: int = 64,
    bottleneck: bool = True,
    num_classes: int = 10,
) -> nn.Module:
    return ResNet(list(blocks_per_stage), base_width, bottleneck, num_classes)


build_resnet.options = ResNetOptions  # type: ignore[attr-defined]
