"""CIFAR VGG with batch norm: 3x3 convs + BN + ReLU in five stages, each closed by 2x2 max-pool,
then a single Linear layer on the 1x1x512 map (VGG-19-BN: 16 convs, about 20.0M parameters)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from fggp_repro.models import register


class VGG(nn.Module):
    def __init__(self, convs_per_stage: Sequence[int], widths: Sequence[int], num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for n_convs, width in zip(convs_per_stage, widths, strict=True):
            for _ in range(n_convs):
                layers += [
                    nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                in_channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(in_channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


@register("vgg")
def build_vgg(
    convs_per_stage: Sequence[int], widths: Sequence[int], num_classes: int = 10
) -> nn.Module:
    return VGG(list(convs_per_stage), list(widths), num_classes)
