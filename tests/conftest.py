"""Shared helpers: tiny networks, a tiny synthetic dataset, and the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "fggp_repro.cli.main"]
#: a demo run of two tiny epochs, for tests of the command line
FAST = ["experiment=demo", "train.epochs=2", "data.train_size=256", "data.test_size=128"]
FAST += ["schedule.interval=2", "train.progress=false"]


class TwoLinear(nn.Module):
    """Two Linear layers (2x2 and 1x2 weights, no bias): six weights with hand-picked values."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2, bias=False)
        self.b = nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.b(self.a(x))


class SmallConvNet(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


def set_layer_values(model: TwoLinear, weights: list[float], grads: list[float]) -> None:
    """Fill a TwoLinear's six weights and gradients in flat (module) order."""
    with torch.no_grad():
        for param, start in ((model.a.weight, 0), (model.b.weight, 4)):
            n = param.numel()
            param.copy_(torch.tensor(weights[start : start + n]).view_as(param))
            param.grad = torch.tensor(grads[start : start + n]).view_as(param).clone()


def compose(*overrides: str):
    """The config the CLI would see for these overrides (Hydra's compose API)."""
    import fggp_repro.cli.main  # noqa: F401  (registers the schema and resolver)
    from fggp_repro.cli.config import compose_job

    return compose_job(list(overrides))


def spec(*overrides: str):
    """The typed, checked RunSpec the CLI would run for these overrides."""
    from fggp_repro.cli.config import to_spec

    return to_spec(compose(*overrides))


def run_cli(*overrides: str, cwd: Path | None = None, timeout: int = 240, env: dict | None = None):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [*CLI, *overrides],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def two_linear() -> TwoLinear:
    return TwoLinear()
