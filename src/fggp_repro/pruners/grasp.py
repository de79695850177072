"""GraSP (Wang et al. 2020, "Picking Winning Tickets Before Training by Preserving Gradient
Flow").

At initialisation, score each weight by -w * (H g), with g the gradient of the cross-entropy of
temperature-scaled logits (T = 200) and H its Hessian, on `batches` training minibatches; prune
the highest scores globally (the weights whose removal least reduces gradient flow), then train
with the mask fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fggp_repro.foundations.options import bounded
from fggp_repro.pruners.at_init import OneShotPruner, scoring_copy, take

if TYPE_CHECKING:
    from torch import Tensor, nn

    from fggp_repro.sparsity.masks import MaskSet


def hessian_gradient_product(
    model: nn.Module,
    weights: list[nn.Parameter],
    batches: list[tuple[Tensor, Tensor]],
    temperature: float = 1.0,
) -> list[Tensor]:
    """H g for the summed loss over `batches`, with g the (detached) gradient of that loss."""
    import torch

    def loss(images: Tensor, labels: Tensor) -> Tensor:
        return torch.nn.functional.cross_entropy(model(images) / temperature, labels)

    gradient = [torch.zeros_like(w) for w in weights]
    for images, labels in batches:
        parts = torch.autograd.grad(loss(images, labels), weights)
        for total, part in zip(gradient, parts, strict=True):
            total += part
    product = [torch.zeros_like(w) for w in weights]
    for images, labels in batches:
        grads = torch.autograd.grad(loss(images, labels), weights, create_graph=True)
        inner = sum((g * v).sum() for g, v in zip(grads, gradient, strict=True))
        for total, part in zip(product, torch.autograd.grad(inner, weights), strict=True):
            total += part
    return product


@dataclass(frozen=True)
class GraSPOptions:
    batches: int = bounded(1, "[1, inf)")
    temperature: float = bounded(200.0, "(0, inf)")


class GraSP(OneShotPruner):
    options = GraSPOptions

    prune_highest = True

    def __init__(self, masks: MaskSet, *, batches: int = 1, temperature: float = 200.0, **target):
        super().__init__(masks, **target)
        self.batches = batches
        self.temperature = temperature

    def scores(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> Tensor:
        import torch

        from fggp_repro.sparsity.masks import flatten

        with torch.enable_grad():
            clone, weights = scoring_copy(model, self.masks.names)
            hg = hessian_gradient_product(
                clone, weights, take(batches, self.batches), self.temperature
            )
            return flatten(-w.detach() * p for w, p in zip(weights, hg, strict=True))
