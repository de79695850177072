"""Typed options that carry their own ranges, and the check that reads them.

Every setting a user can type, a top-level one (`optim.lr`) or a plugin's own (`pruner.rate`),
is a field of a frozen dataclass. Its natural range sits beside it as field metadata, so adding
an option is one line in one place and its check and its error message follow:

    rate: float = bounded(0.5, "(0, 1]")

No torch, no Hydra: the command line checks a config before it imports either.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Collection, Sequence
from enum import Enum
from typing import Any

from fggp_repro.foundations.errors import ConfigError

_INTERVAL = re.compile(r"([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])")


class Choice(str, Enum):
    """An option with named values: written and shown as its value (`order: gradient_first`)."""

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a plugin that has none."""


def bounded(default: Any, interval: str, note: str = "") -> Any:
    """A field whose value must lie in `interval`, written as in mathematics: "(0, 1]",
    "[1, inf)". `note` is added to the message, e.g. what the boundary value means."""
    _parse(interval)  # a malformed range fails where it is written
    return dataclasses.field(default=default, metadata={"range": interval, "note": note})


def place(default: Any) -> Any:
    """A field that says where something is or may be fetched from (a data folder, a download
    switch): it changes no result, so it is no part of a run's identity, whatever its name."""
    return dataclasses.field(default=default, metadata={"place": True})


def place_fields(options_type: type) -> list[str]:
    """The names of an options dataclass's `place` fields."""
    return [f.name for f in dataclasses.fields(options_type) if f.metadata.get("place")]


def positive_list(default: Sequence[int]) -> Any:
    """A non-empty list of integers >= 1 (stage sizes, widths, milestones)."""
    return dataclasses.field(default_factory=lambda: list(default), metadata={"positive": True})


def check_options(options: Any, prefix: str, names: Collection[str] | None = None) -> None:
    """Raise ConfigError for the first field of `options` (and of the dataclasses it holds)
    that is not finite or lies outside its range, naming it as `prefix.field`; only the fields
    in `names`, if given."""
    for field in dataclasses.fields(options):
        if names is not None and field.name not in names:
            continue
        key, value = (
            f"{prefix}.{field.name}" if prefix else field.name,
            getattr(options, field.name),
        )
        if dataclasses.is_dataclass(value):
            check_options(value, key)
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value}")
        if "range" in field.metadata and value is not None:
            low, high, closed_low, closed_high = _parse(field.metadata["range"])
            above = value >= low if closed_low else value > low
            below = value <= high if closed_high else value < high
            if not (above and below):
                expected = describe(field.metadata["range"]) + _note(field.metadata["note"])
                raise ConfigError(f"{key} must be {expected}, got {value}")
        if field.metadata.get("positive") and (not len(value) or min(value) < 1):
            raise ConfigError(f"{key} must be a list of integers >= 1, got {list(value)}")


def describe(interval: str) -> str:
    """`[1, inf)` as ">= 1", `(0, inf)` as "> 0", others as written: "in (0, 1]"."""
    low, high, closed_low, _ = _parse(interval)
    if math.isinf(high):
        return f"{'>=' if closed_low else '>'} {low:g}"
    return f"in {interval}"


def _note(note: str) -> str:
    return f" ({note})" if note else ""


def _parse(interval: str) -> tuple[float, float, bool, bool]:
    match = _INTERVAL.fullmatch(interval.strip())
    if match is None:
        raise ValueError(f"not an interval: {interval!r}")
    opening, low, high, closing = match.groups()
    return float(low), float(high), opening == "[", closing == "]"
