"""Backbones. Each architecture is a module holding a builder and its options; the YAML files
in conf/backbone/ name a builder by `_target_` and give its sizes, so nothing here lists them."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from fggp_repro.spec import PluginSpec

if TYPE_CHECKING:
    from torch import nn


def build_backbone(spec: PluginSpec, num_classes: int = 10) -> nn.Module:
    """The network a backbone spec describes, with `num_classes` outputs."""
    return spec.builder(num_classes=num_classes, **asdict(spec.options))
