"""SynFlow (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
conserving synaptic flow").

Data-free: on a copy with every parameter replaced by its absolute value (float64, eval mode),
R = sum of the network's output for an all-ones input; score |w * dR/dw|. Over `rounds` rounds
(100) the density follows the exponential schedule d_f^(k / rounds), each round re-scoring the
surviving weights and keeping the top ones globally. Then train with the mask fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fggp_repro.foundations.options import bounded
from fggp_repro.pruners.at_init import OneShotPruner, scoring_copy, take
from fggp_repro.sparsity.selection import smallest_k

if TYPE_CHECKING:
    from torch import Tensor, nn

    from fggp_repro.sparsity.masks import MaskSet


def synflow_scores(
    model: nn.Module, weights: list[nn.Parameter], input_shape: Sequence[int]
) -> Tensor:
    """|w * dR/dw| with R = sum(model(ones)); `model` must already hold absolute values."""
    import torch

    from fggp_repro.sparsity.masks import flatten

    model.zero_grad(set_to_none=True)
    ones = torch.ones(*input_shape, dtype=weights[0].dtype, device=weights[0].device)
    model(ones).sum().backward()
    return flatten((w.grad * w).abs() for w in weights).detach()


@dataclass(frozen=True)
class SynFlowOptions:
    rounds: int = bounded(100, "[1, inf)")


class SynFlow(OneShotPruner):
    options = SynFlowOptions

    def __init__(
        self,
        masks: MaskSet,
        *,
        rounds: int = 100,
        input_shape: Sequence[int] | None = None,
        **target,
    ):
        super().__init__(masks, **target)
        self.rounds = rounds
        self.input_shape = None if input_shape is None else tuple(input_shape)

    def at_init(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> None:
        """Iterative: prune a little each round on the absolute-valued copy, then copy the mask.
        Data-free: of the data it reads only the shape of one image (an input of ones)."""
        import torch

        input_shape = self.input_shape
        if input_shape is None:
            [(images, _)] = take(batches, 1)
            input_shape = (1, *images.shape[1:])
        with torch.enable_grad():
            clone, _ = scoring_copy(model, self.masks.names)
            clone.double().eval()
            parameters = dict(clone.named_parameters())
            weights = [parameters[name] for name in self.masks.names]
            with torch.no_grad():
                for tensor in [*clone.parameters(), *clone.buffers()]:
                    if tensor.is_floating_point():
                        tensor.abs_()
            originals = [w.detach().clone() for w in weights]
            alive = self.masks.flat_mask()
            for k in range(1, self.rounds + 1):
                with torch.no_grad():
                    pieces = torch.split(alive.to(originals[0].dtype), self.masks.sizes)
                    for w, w0, m in zip(weights, originals, pieces, strict=True):
                        w.copy_(w0 * m.view_as(w0))
                scores = synflow_scores(clone, weights, input_shape)
                keep = self.masks.target_active(self.target_density ** (k / self.rounds))
                n_prune = int(alive.sum()) - keep
                if n_prune > 0:
                    alive[smallest_k(scores, alive, n_prune)] = False
        self.masks.set_flat(alive)
