"""A layer the builders compose that torch.nn lacks. It is kept out of the builders' modules,
which import torch only inside their functions: the command line reads a backbone's options
from its module, and a refusal of a bad value then costs no torch start-up."""

from __future__ import annotations

from torch import Tensor, nn


class Residual(nn.Module):
    """relu(body(x) + shortcut(x)): the residual block of the CIFAR ResNets."""

    def __init__(self, body: nn.Module, shortcut: nn.Module):
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))
