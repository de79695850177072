"""Run identity: two runs are the same experiment exactly when their identities are equal.

The identity is the whole resolved config minus what cannot change the result:
  - where things go and how they are shown: `output_root`, `train.progress`, `skip_completed`,
    `checkpoint.*`, `data.root`, `data.download`;
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

from omegaconf import DictConfig, OmegaConf

from fggp_repro.config import pruner_traits, unused_pruner_options

#: bump when a change of the code makes earlier records incomparable with new ones
IDENTITY_VERSION = 2  # 2: the ablation corners counted as the authors count them
IGNORED = (
    "output_root", "skip_completed", "checkpoint", "train.progress", "train.device",
    "train.deterministic", "train.compile", "train.channels_last",
    "train.eval_every", "train.eval_batch_size", "data.root", "data.download",
)  # fmt: skip
ID_LENGTH = 10


def identity(cfg: DictConfig) -> dict[str, Any]:
    """The settings that define the experiment (see the module docstring)."""
    traits = pruner_traits(cfg.pruner)
    tree = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(tree, dict)
    tree = copy.deepcopy(tree)
    tree.pop("hydra", None)
    for dotted in IGNORED:
        _drop(tree, dotted)
    if not traits.uses_target:
        tree.pop("sparsity", None)
    if not traits.uses_initial_state:
        tree.pop("init", None)
    if not traits.uses_schedule and not cfg.protocol.best_test_after_pruning:
        tree.pop("schedule", None)  # kept where it sets the window of the best-after figure
    for option in unused_pruner_options(cfg.pruner):
        tree["pruner"].pop(option, None)
    return {"identity_version": IDENTITY_VERSION, **tree}


def digest(tree: dict[str, Any]) -> str:
    canonical = json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:ID_LENGTH]


def run_id(cfg: DictConfig) -> str:
    return digest(identity(cfg))


def setting_id(cfg: DictConfig) -> str:
    """The id of the experiment without its seed: the runs a table averages together."""
    tree = identity(cfg)
    tree.pop("seed", None)
    return digest(tree)


def run_subdir(cfg: DictConfig) -> str:
    """Where a run lives below output_root: the readable axis levels, then the seed and the run
    id. Derived from the config alone, so a requeued or repeated job finds its directory again;
    axes the pruner has no use for are left out, as in its record."""
    traits = pruner_traits(cfg.pruner)
    parts = [cfg.data.name, cfg.backbone.name, cfg.pruner.name]
    parts += [f"s{cfg.sparsity}"] if traits.uses_target else []
    parts += [str(cfg.init)] if traits.uses_initial_state else []
    return "/".join([*parts, f"seed{cfg.seed}-{run_id(cfg)}"])


def _drop(tree: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.get(key)
        if not isinstance(tree, dict):
            return
    tree.pop(leaf, None)
