"""Backbone registry: an architecture module registers a builder under its `arch` name, and each
YAML file in conf/backbone/ picks an architecture and its sizes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from fggp_repro.errors import ConfigError

BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(arch: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        BUILDERS[arch] = builder
        return builder

    return decorator


def build_backbone(cfg: Any, num_classes: int = 10) -> nn.Module:
    """Build the network a backbone config describes; every field but name and arch is passed on."""
    params = {k: v for k, v in dict(cfg).items() if k not in ("name", "arch")}
    if cfg.arch not in BUILDERS:
        raise ConfigError(f"unknown backbone architecture '{cfg.arch}' (known: {sorted(BUILDERS)})")
    return BUILDERS[cfg.arch](num_classes=num_classes, **params)


from fggp_repro.models import resnet, vgg  # noqa: E402, F401  (registration)
