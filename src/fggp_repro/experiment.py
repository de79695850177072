"""One experiment: a config in, a trained network and a result.json out. No Hydra in here, so it
runs the same from the command line, a sweep launcher, a SLURM job or a notebook."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from fggp_repro.config import INITIAL_DENSITY, DensityBase, Init, pruner_axes, validate
from fggp_repro.data import iterations_per_epoch, load_data
from fggp_repro.errors import ConfigError, ResultsError, UserError
from fggp_repro.masks import MaskSet, conv_linear_parameter_count
from fggp_repro.models import build_backbone
from fggp_repro.pruners import build_pruner
from fggp_repro.records import RESULT_FILE, environment, read_record, write_json_atomic
from fggp_repro.trainer import resolve_device, set_determinism, train

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
RUNNING_METRICS_FILE = "metrics.running.jsonl"  # renamed to METRICS_FILE when the run completes


class RunFailed(Exception):
    """Training started and failed; a failed record was written."""


def run_experiment(cfg: Any, output_dir: Path) -> dict[str, Any]:
    """Validate, train, and write `output_dir/result.json`; return the record.

    Bad input raises UserError before anything is written. A completed record already in
    `output_dir` is kept and returned unless `skip_completed` is false; then it is replaced only
    by a run that completes too (a failed rerun leaves it and its metrics as they were).
    """
    validate(cfg)
    result_path = output_dir / RESULT_FILE
    previous = None
    if result_path.exists():
        try:
            previous = read_record(result_path)
        except ResultsError as error:
            if cfg.skip_completed:
                raise ResultsError(f"{error} (remove it, or set skip_completed=false)") from None
    completed_before = previous is not None and previous.get("status") == "completed"
    if cfg.skip_completed and completed_before:
        log.info("already completed, kept: %s (skip_completed=false reruns)", result_path)
        return previous

    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.train.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"train.device={cfg.train.device} but CUDA is not available here")
    set_determinism(cfg.train.deterministic)
    data = load_data(cfg.data).to(device)
    model = build_backbone(cfg.backbone, data.num_classes).to(device)
    masks = MaskSet.from_model(
        model, cfg.masking.keep_first_conv_dense, DensityBase(cfg.masking.density_base).value
    )
    if pruner_axes(cfg.pruner)[0]:
        check_reachable(masks, 1.0 - cfg.sparsity, cfg.masking.density_base)
    total_iterations = cfg.train.epochs * iterations_per_epoch(
        data.train_x.shape[0], cfg.train.batch_size, cfg.train.drop_last
    )
    initial_density = INITIAL_DENSITY[Init(cfg.init)]
    pruner = build_pruner(
        cfg.pruner,
        masks,
        target_density=1.0 - cfg.sparsity,
        total_iterations=total_iterations,
        initial_density=initial_density,
        seed=cfg.seed,
        schedule=cfg.schedule,
    )

    record = _base_record(cfg, data.synthetic, model, masks, device)
    output_dir.mkdir(parents=True, exist_ok=True)
    running_metrics = output_dir / RUNNING_METRICS_FILE
    running_metrics.unlink(missing_ok=True)
    log.info(
        "training %s / %s to sparsity %s from %s on %s (%d iterations)",
        cfg.backbone.name, cfg.pruner.name, record["target_sparsity"], record["init"],
        record["dataset"], total_iterations,
    )  # fmt: skip
    try:
        outcome = train(model, masks, pruner, data, cfg.optim, cfg.train, cfg.seed, running_metrics)
    except Exception as error:
        record.update(status="failed", reason=f"{type(error).__name__}: {error}")
        if completed_before:
            raise RunFailed(
                f"training failed ({record['reason']}); the earlier completed record "
                f"{result_path} was kept"
            ) from error
        write_json_atomic(result_path, record)
        raise RunFailed(f"training failed ({record['reason']}); record: {result_path}") from error

    record.update(
        status="completed",
        final_test_acc=outcome.final_test_acc,
        **achieved_sparsities(masks, record["params_conv_linear"]),
        per_layer=masks.layer_stats(),
        epochs=outcome.epochs,
        iterations=outcome.iterations,
        train_seconds=outcome.train_seconds,
        images_per_second=outcome.images_per_second,
    )
    running_metrics.replace(output_dir / METRICS_FILE)
    write_json_atomic(result_path, record)
    log.info(
        "final test accuracy %.2f%%, sparsity %.4f -> %s",
        outcome.final_test_acc, record["achieved_sparsity"], result_path,
    )  # fmt: skip
    return record


def check_reachable(masks: MaskSet, final_density: float, density_base: str) -> None:
    """A target whose count over the density base leaves no prunable weight is refused."""
    try:
        masks.target_active(final_density)
    except ValueError as error:
        raise ConfigError(
            f"masking.density_base={density_base}: {error}; lower the sparsity or use "
            "masking.density_base=prunable"
        ) from None


def achieved_sparsities(masks: MaskSet, conv_linear: int) -> dict[str, float]:
    """Sparsity over the prunable weights, and over every Conv2d/Linear parameter (biases and a
    dense first conv count as active), counted from the masks."""
    active_conv_linear = masks.active_count + conv_linear - masks.numel
    return {
        "achieved_sparsity": 1.0 - masks.active_count / masks.numel,
        "achieved_sparsity_conv_linear": 1.0 - active_conv_linear / conv_linear,
    }


def _base_record(
    cfg: Any, synthetic: bool, model: torch.nn.Module, masks: MaskSet, device: torch.device
) -> dict[str, Any]:
    uses_target, uses_initial_state = pruner_axes(cfg.pruner)
    return {
        "status": "running",
        "backbone": cfg.backbone.name,
        "pruner": cfg.pruner.name,
        "target_sparsity": cfg.sparsity if uses_target else 0.0,
        "init": Init(cfg.init).value if uses_initial_state else "n/a",
        "seed": cfg.seed,
        "dataset": cfg.data.name,
        "synthetic_data": synthetic,
        "final_test_acc": None,
        "achieved_sparsity": None,
        "achieved_sparsity_conv_linear": None,
        "per_layer": None,
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_prunable": masks.numel,
        "params_conv_linear": conv_linear_parameter_count(model),
        "epochs": cfg.train.epochs,
        "train_seconds": None,
        "images_per_second": None,
        **environment(device),
        "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
    }
