"""Backbones. Each architecture is a module holding a builder and its options; the YAML files
in conf/backbone/ name a builder by `_target_` and give its sizes, so nothing here lists them.

A builder takes `num_classes` and, to take images of other than 3 channels, `in_channels`; a
builder that cannot take every image size says which it takes in a `check_input(options,
image_shape)` beside its `options` (VGG's pools need 32 to 63 pixels a side), checked before
any run starts and without torch."""

from __future__ import annotations

import inspect
from dataclasses import asdict
from typing import TYPE_CHECKING

from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.spec import PluginSpec

if TYPE_CHECKING:
    from torch import nn

CIFAR_CHANNELS = 3


def takes_in_channels(builder: object) -> bool:
    return "in_channels" in inspect.signature(builder).parameters  # type: ignore[arg-type]


def check_input(spec: PluginSpec, image_shape: tuple[int, int, int]) -> None:
    """ConfigError (one line) when the backbone cannot take images of this shape."""
    builder = spec.builder
    if image_shape[0] != CIFAR_CHANNELS and not takes_in_channels(builder):
        raise ConfigError(
            f"backbone={spec.name}: its builder {spec.target} has no in_channels parameter, "
            f"and the data's images have {image_shape[0]} channel(s)"
        )
    check = getattr(builder, "check_input", None)
    if check is not None:
        try:
            check(spec.options, image_shape)
        except ConfigError as error:
            raise ConfigError(f"backbone={spec.name} {error}") from None


def build_backbone(
    spec: PluginSpec, num_classes: int = 10, in_channels: int = CIFAR_CHANNELS
) -> nn.Module:
    """The network a backbone spec describes, with `num_classes` outputs, for images of
    `in_channels` channels."""
    channels = {"in_channels": in_channels} if takes_in_channels(spec.builder) else {}
    return spec.builder(num_classes=num_classes, **channels, **asdict(spec.options))
