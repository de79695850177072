"""A run's objects built from its spec: data on the device, the network, its masks, the pruner
and the training state. Building changes nothing on disk."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.spec import INITIAL_DENSITY, RunSpec
from fggp_repro.models import build_backbone
from fggp_repro.pruners import build_pruner
from fggp_repro.runs.validation import total_iterations
from fggp_repro.sparsity.masks import MaskSet, conv_linear_parameter_count
from fggp_repro.training.data import ImageData, load_data
from fggp_repro.training.state import TrainState
from fggp_repro.training.trainer import set_determinism


@dataclass
class Built:
    """What a run trains: its data, network and masks, then its state (with the pruner)."""

    data: ImageData
    model: torch.nn.Module
    masks: MaskSet
    channels_last: bool
    state: TrainState = None  # type: ignore[assignment]  # build_state sets it

    def sizes(self) -> dict[str, int]:
        """The network's parameter counts, as the record gives them."""
        return {
            "params_total": sum(p.numel() for p in self.model.parameters()),
            "params_prunable": self.masks.numel,
            "params_conv_linear": conv_linear_parameter_count(self.model),
        }


def build_network(spec: RunSpec, device: torch.device) -> Built:
    """Seeded and in the spec's determinism: the data, the network (channels_last where asked,
    by default on a GPU) and its masks, on `device`; a target its masks cannot reach refused."""
    if device.type == "cuda":
        torch.cuda.set_device(device)  # the leased GPU is where every default allocation goes
    torch.manual_seed(spec.seed)
    set_determinism(spec.train.deterministic)
    data = load_data(spec.data).to(device)
    model = build_backbone(spec.backbone, data.num_classes, data.image_shape[0]).to(device)
    channels_last = spec.train.channels_last
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    masking = spec.masking
    masks = MaskSet.from_model(model, masking.keep_first_conv_dense, masking.density_base)
    if spec.pruner.builder.traits.uses_target:
        check_reachable(masks, 1.0 - spec.sparsity, masking.density_base.value)
    return Built(data, model, masks, channels_last)


def build_state(spec: RunSpec, built: Built) -> None:
    """The pruner and a fresh training state of the built network."""
    masks = built.masks
    pruner = build_pruner(
        spec.pruner,
        masks,
        target_density=1.0 - spec.sparsity,
        total_iterations=total_iterations(spec),
        initial_density=INITIAL_DENSITY[spec.init],
        seed=spec.seed,
        schedule=spec.schedule,
    )
    built.state = TrainState(built.model, masks, pruner, spec.optim, spec.seed)
    if built.channels_last:
        built.state.memory_format = torch.channels_last


def check_reachable(masks: MaskSet, final_density: float, density_base: str) -> None:
    """A target whose count over the density base leaves no prunable weight is refused."""
    try:
        masks.target_active(final_density)
    except ValueError as error:
        raise ConfigError(
            f"masking.density_base={density_base}: {error}; lower the sparsity or use "
            "masking.density_base=prunable"
        ) from None
