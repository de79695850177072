"""The pruner interface: three hooks the training loop calls, and what a checkpoint needs.

    pruner.at_init(model, batches)   once, before the first step (initial mask, pruning at init)
    loss.backward()
    pruner.after_backward(t)         gradients of minibatch t are in .grad; may change the mask
    optimizer.step(); masks.apply_(optimizer)
    pruner.after_step(t)             weights of step t are updated and masked

    pruner.acts_at(t)                whether either hook does anything at step t
    pruner.state_dict(), load_state_dict(state)   everything beyond the masks (its generator)

A pruner is one module: its class, its options (a frozen dataclass, `options`), its traits, and
the checks its settings need before any training (`check_settings`); one YAML file in
conf/pruner/ names the class by `_target_` and gives the options' values. A pruner module
imports torch inside the methods that use it (types only under TYPE_CHECKING): the command line
imports the module to read its options, and a refusal of a bad value then costs no torch start-up.

A pruner only ever changes the mask through its MaskSet; the loop zeroes masked weights and their
momentum after every step, so no pruner needs to know about the optimizer. Schedules are pure
functions of t, so a pruner's own state is its random generator.

Where `acts_at(t)` is False, both hooks must do nothing at t: the fast step paths (steps.py)
replay a captured or compiled step there without calling them, and only run a step with its
hooks, eagerly, where `acts_at(t)` is True (tested for every shipped pruner).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from fggp_repro.foundations.options import NoOptions
from fggp_repro.foundations.spec import ScheduleSpec

if TYPE_CHECKING:
    from torch import Tensor, nn

    from fggp_repro.sparsity.masks import MaskSet


@dataclass(frozen=True)
class PrunerTraits:
    """Which settings mean something for a pruner: the target sparsity, the dense / sparse50
    initial state, and the `schedule` group. An unused one is refused (`init`) or ignored, and
    left out of the run's identity and directory. A pruner without a target sparsity (dense
    training, whatever its name or options) is a reference: its runs are recorded as such, drawn
    as lines beside the pruned ones and never ranked."""

    uses_target: bool = True
    uses_initial_state: bool = True
    uses_schedule: bool = True
    reads_dense_gradient: bool = False  # regrows by the dense gradient (training FLOPs)


class Pruner:
    """Base class: keeps the network at `initial_density` (random ERK mask when below 1)."""

    options: ClassVar[type] = NoOptions
    traits: ClassVar[PrunerTraits] = PrunerTraits()

    @classmethod
    def unused_options(cls, options: Any) -> list[str]:
        """Options these settings leave without effect: not part of the run's identity."""
        return []

    @classmethod
    def check_settings(cls, options: Any, schedule: ScheduleSpec, total_iterations: int) -> None:
        """Raise ConfigError (one line) for settings this pruner cannot run with."""

    def __init__(
        self,
        masks: MaskSet,
        *,
        target_density: float,
        total_iterations: int,
        initial_density: float = 1.0,
        seed: int = 0,
    ):
        import torch

        self.masks = masks
        self.target_density = target_density
        self.total_iterations = total_iterations
        self.initial_density = initial_density
        self.generator = torch.Generator().manual_seed(seed)

    def at_init(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> None:
        """Before the first step; `batches` yields training minibatches for methods that score
        the network at initialisation (read lazily: a method that needs none costs nothing)."""
        if self.initial_density < 1.0:
            self.masks.init_random_erk(self.initial_density, self.generator)

    def after_backward(self, iteration: int) -> None:
        """Called with this minibatch's gradients in place, before the optimizer step."""

    def after_step(self, iteration: int) -> None:
        """Called after the optimizer step and masking."""

    def acts_at(self, iteration: int) -> bool:
        """Whether a hook may do anything at this iteration; where not, the hooks are skipped
        (the fast step paths keep every other step free of pruning work)."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
