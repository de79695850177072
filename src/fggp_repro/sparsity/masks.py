"""Binary masks over the prunable weights of a model.

Masks live beside the weights (no `weight_orig` reparametrisation, no forward hooks) and are
applied in place after each optimizer step, so gradients stay dense for the pruners that need
them, parameter addresses never change, and one fused call zeroes every masked weight and its
momentum without a per-layer loop of host syncs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from fggp_repro.foundations.spec import DensityBase
from fggp_repro.sparsity.erk import erk_counts


def prunable_weights(
    model: nn.Module, keep_first_conv_dense: bool = True
) -> list[tuple[str, nn.Parameter]]:
    """The weights of every Conv2d and Linear layer in module order (never biases or norms);
    the first convolution is left out when it is to stay dense."""
    named = [
        (f"{name}.weight" if name else "weight", module.weight)
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    first_conv = next(
        (i for i, (_, w) in enumerate(named) if w.dim() == 4),
        None,
    )
    if keep_first_conv_dense and first_conv is not None:
        del named[first_conv]
    return named


def conv_linear_parameter_count(model: nn.Module) -> int:
    """Every parameter of every Conv2d and Linear layer, biases and the first conv included: the
    base over which the FGGP authors' code measures density (`initial_num_weights`)."""
    return sum(
        p.numel()
        for module in model.modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
        for p in module.parameters(recurse=False)
    )


def active_target(density: float, numel: int, base_numel: int) -> int:
    """How many of `numel` prunable weights stay active so that exactly round(density x base)
    of `base_numel` parameters are active, the base's parameters outside the prunable set (biases,
    a dense first conv) counting as always active. With base_numel == numel this is
    round(density x numel); with the authors' larger base the prunable weights end slightly
    sparser than `density`."""
    target = round(density * base_numel) - (base_numel - numel)
    if not 0 <= target <= numel:
        raise ValueError(
            f"density {density:.6g} of {base_numel} parameters leaves {target} of the {numel} "
            "prunable weights active"
        )
    return target


def flatten(tensors: Iterable[Tensor]) -> Tensor:
    """Concatenate per-layer tensors shaped like the weights into one flat vector (model order)."""
    return torch.cat([t.reshape(-1) for t in tensors])


class MaskSet:
    """One 0/1 mask per prunable weight, in the weight's dtype and device.

    Selection works on the flat concatenation of all layers (model order), so a flat index names
    one weight of one layer and global rankings are plain sorts. Densities are measured over
    `base_numel` parameters (default: the prunable weights themselves), see `active_target`.
    """

    def __init__(
        self, named_weights: Iterable[tuple[str, nn.Parameter]], base_numel: int | None = None
    ):
        named = list(named_weights)
        if not named:
            raise ValueError("no prunable weights")
        self.names = [name for name, _ in named]
        self.weights = [w for _, w in named]
        self.masks = [
            torch.ones_like(w, memory_format=torch.contiguous_format) for w in self.weights
        ]
        self.sizes = [w.numel() for w in self.weights]
        self.numel = sum(self.sizes)
        self.base_numel = self.numel if base_numel is None else base_numel
        if self.base_numel < self.numel:
            raise ValueError("the density base must include every prunable weight")
        self._active = self.numel
        self._momentum: list[Tensor] | None = None
        self._momentum_source: object = None

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        keep_first_conv_dense: bool = True,
        density_base: DensityBase | str = DensityBase.prunable,
    ) -> MaskSet:
        """`density_base`: "prunable" measures densities over the prunable weights, so a target
        density is exactly what stays; "conv_linear" over every Conv2d/Linear parameter, as the
        FGGP authors' code does (and the command line by default)."""
        conv_linear = DensityBase(density_base) is DensityBase.conv_linear  # ValueError if unknown
        base = conv_linear_parameter_count(model) if conv_linear else None
        return cls(prunable_weights(model, keep_first_conv_dense), base)

    # --- reading -------------------------------------------------------------------------------
    @property
    def active_count(self) -> int:
        """Number of unmasked prunable weights (kept on the host; no device sync)."""
        return self._active

    @property
    def density(self) -> float:
        """Active fraction of the prunable weights."""
        return self._active / self.numel

    @property
    def active_over_base(self) -> int:
        """Active parameters of the density base: the base's non-prunable ones count as active."""
        return self._active + self.base_numel - self.numel

    def target_active(self, density: float) -> int:
        """Prunable weights to keep active for `density` over the base (see `active_target`)."""
        return active_target(density, self.numel, self.base_numel)

    def flat_mask(self) -> Tensor:
        """Boolean flat mask, True where a weight is active."""
        return torch.cat([m.reshape(-1) for m in self.masks]).bool()

    def flat(self, tensors: Iterable[Tensor]) -> Tensor:
        return flatten(tensors)

    def layer_active_counts(self) -> list[int]:
        """Active weights per layer (one device sync: for pruning events, not every step)."""
        return [int(n) for n in torch.stack([m.sum() for m in self.masks]).tolist()]

    def flat_weight_magnitudes(self) -> Tensor:
        return self.flat(w.detach().abs() for w in self.weights)

    def flat_grad_magnitudes(self) -> Tensor:
        """|grad| of each prunable weight; zero where no gradient has been computed."""
        return self.flat(
            torch.zeros_like(w) if w.grad is None else w.grad.detach().abs() for w in self.weights
        )

    def layer_densities(self, counts: Sequence[int]) -> dict[str, float]:
        """Each masked weight's density from its active count, by parameter name."""
        return {
            name: active / w.numel()
            for name, w, active in zip(self.names, self.weights, counts, strict=True)
        }

    def layer_stats(self) -> list[dict]:
        return [
            {
                "name": name,
                "shape": list(w.shape),
                "numel": w.numel(),
                "active": active,
                "density": active / w.numel(),
            }
            for name, w, active in zip(
                self.names, self.weights, self.layer_active_counts(), strict=True
            )
        ]

    # --- writing -------------------------------------------------------------------------------
    def set_flat(self, flat_active: Tensor) -> None:
        """Replace every mask, in place, from a flat boolean vector; zero newly masked weights."""
        pieces = torch.split(flat_active.to(self.masks[0].dtype), self.sizes)
        for mask, piece in zip(self.masks, pieces, strict=True):
            mask.copy_(piece.view_as(mask))
        self._active = int(flat_active.sum())
        self.apply_()

    def prune(self, flat_indices: Tensor) -> None:
        """Mask the given active weights (flat indices)."""
        flat = self.flat_mask()
        if not bool(flat[flat_indices].all()):
            raise ValueError("asked to prune a weight that is already masked")
        flat[flat_indices] = False
        self.set_flat(flat)

    def init_random(self, counts: list[int], generator: torch.Generator) -> None:
        """Keep exactly counts[l] uniformly drawn weights active in layer l."""
        flat = torch.zeros(self.numel, dtype=torch.bool)
        offset = 0
        for count, size in zip(counts, self.sizes, strict=True):
            flat[offset + torch.randperm(size, generator=generator)[:count]] = True
            offset += size
        self.set_flat(flat.to(self.masks[0].device))

    def init_random_erk(self, density: float, generator: torch.Generator) -> None:
        """A sparse-from-scratch start at `density` over the base: ERK layer densities over the
        prunable layers, a uniform random mask in each layer."""
        total = self.target_active(density)
        self.init_random(erk_counts([w.shape for w in self.weights], total), generator)

    @torch.no_grad()
    def apply_(
        self, optimizer: torch.optim.Optimizer | None = None, skip_when_dense: bool = True
    ) -> None:
        """Zero every masked weight and, when an optimizer is given, its momentum buffer.
        A compiled step passes skip_when_dense=False: branching on the active count would make
        torch.compile specialise on it and recompile after every pruning event."""
        if skip_when_dense and self._active == self.numel:
            return
        torch._foreach_mul_(self.weights, self.masks)
        if optimizer is not None:
            momentum = self._momentum_buffers(optimizer)
            if momentum:
                torch._foreach_mul_(momentum, self.masks)

    def _momentum_buffers(self, optimizer: torch.optim.Optimizer) -> list[Tensor]:
        """The weights' momentum buffers, looked up again whenever the optimizer's state was
        replaced (load_state_dict makes new buffers)."""
        if self._momentum is None or self._momentum_source is not optimizer.state:
            buffers = [optimizer.state.get(w, {}).get("momentum_buffer") for w in self.weights]
            if any(b is None for b in buffers):
                return []
            self._momentum, self._momentum_source = buffers, optimizer.state
        return self._momentum

    # --- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> list[Tensor]:
        """The masks as boolean tensors on the CPU (an eighth of a float copy)."""
        return [m.detach().bool().cpu() for m in self.masks]

    def load_state_dict(self, masks: list[Tensor]) -> None:
        if [tuple(m.shape) for m in masks] != [tuple(m.shape) for m in self.masks]:
            raise ValueError("the saved masks do not fit this network")
        self.set_flat(flatten(masks).to(self.masks[0].device))
