"""Run identity: two runs are the same experiment exactly when their identities are equal.

The identity is the whole resolved config minus what cannot change the result:
  - where things go and how they are shown: `output_root`, `train.progress`, `skip_completed`,
    `checkpoint.*`, and every plugin option declared a place (`options.place`: CIFAR's `root`
    and `download`, whatever a dataset calls its folder);
  - how the same computation is executed: `train.device`, `train.deterministic`,
    `train.compile`, `train.channels_last` (the device, the memory layout or the kernels change
    floating-point rounding, as two runs of non-deterministic GPU kernels on one device do, not
    the experiment);
  - when the test set is looked at: `train.eval_every`, `train.eval_batch_size` (evaluation
    changes no weight and draws no random number);
  - axes the pruner has no use for: the target of dense training, the initial state of methods
    that set their own starting mask, the schedule of methods that never act on it, and options
    its other settings leave without effect (the final rate of a fixed-rate two-stage pruner).
bf16 autocast does change the arithmetic of the experiment, so `train.bf16` stays.

Its SHA-256 over canonical JSON (sorted keys, Python's shortest float repr) gives ids that are
the same in every process and Python version. `run_id` names one run; `setting_id` (the same
without the seed) names the experiment its seeds repeat.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.options import place_fields
from fggp_repro.foundations.spec import RunSpec, locate

#: bump when a change of the code makes earlier records incomparable with new ones
#: 2: the ablation corners counted as the authors count them; 3: plugins named by `_target_`,
#: every option of a plugin in the config (defaults included)
IDENTITY_VERSION = 3
IGNORED = (
    "output_root", "skip_completed", "checkpoint", "logger", "train.progress", "train.device",
    "train.deterministic", "train.compile", "train.channels_last",
    "train.eval_every", "train.eval_batch_size",
)  # fmt: skip
#: the places of a config whose data plugin cannot be imported here (a foreign record)
LEGACY_PLACES = ("data.root", "data.download")
PLACE_GROUPS = ("backbone", "pruner", "data")
ID_LENGTH = 10


def identity(spec: RunSpec) -> dict[str, Any]:
    """The settings that define the experiment (see the module docstring)."""
    pruner = spec.pruner.builder
    traits = pruner.traits
    tree = copy.deepcopy(spec.config)
    tree.pop("hydra", None)
    for dotted in (*IGNORED, *place_keys(tree)):
        _drop(tree, dotted)
    if not traits.uses_target:
        tree.pop("sparsity", None)
    if not traits.uses_initial_state:
        tree.pop("init", None)
    if not traits.uses_schedule and not spec.protocol.best_test_after_pruning:
        tree.pop("schedule", None)  # kept where it sets the window of the best-after figure
    for option in pruner.unused_options(spec.pruner.options):
        tree["pruner"].pop(option, None)
    return {"identity_version": IDENTITY_VERSION, **tree}


def place_keys(config: dict[str, Any]) -> list[str]:
    """`group.option` for every option a config's plugins declare a place (options.place),
    read from the options of the `_target_` each plugin group names; a plugin that names none
    or cannot be imported here (a foreign record) has the places datasets have always had."""
    keys = []
    for group in PLACE_GROUPS:
        node = config.get(group)
        if not isinstance(node, dict):
            continue
        try:
            options = locate(str(node["_target_"])).options
            keys += [f"{group}.{name}" for name in place_fields(options)]
        except (KeyError, ConfigError, AttributeError, TypeError):
            keys += [k for k in LEGACY_PLACES if k.startswith(f"{group}.")]
    return keys


def digest(tree: dict[str, Any]) -> str:
    canonical = json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:ID_LENGTH]


def run_id(spec: RunSpec) -> str:
    return digest(identity(spec))


def setting_id(spec: RunSpec) -> str:
    """The id of the experiment without its seed: the runs a table averages together."""
    tree = identity(spec)
    tree.pop("seed", None)
    return digest(tree)


def run_subdir(spec: RunSpec) -> str:
    """Where a run lives below output_root: the readable axis levels, then the seed and the run
    id. Derived from the config alone, so a requeued or repeated job finds its directory again;
    axes the pruner has no use for are left out, as in its record."""
    traits = spec.pruner.builder.traits
    parts = [spec.data.name, spec.backbone.name, spec.pruner.name]
    parts += [f"s{spec.sparsity}"] if traits.uses_target else []
    parts += [str(spec.init)] if traits.uses_initial_state else []
    return "/".join([*parts, f"seed{spec.seed}-{run_id(spec)}"])


def _drop(tree: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.get(key)
        if not isinstance(tree, dict):
            return
    tree.pop(leaf, None)
