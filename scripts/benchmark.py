"""Throughput of the shared trainer, measured against a plain PyTorch loop in the same process.

    python scripts/benchmark.py                       # CPU-sized default: vgg_tiny
    python scripts/benchmark.py --backbone vgg19 --batch-size 64 --steps 300   # on a GPU

Every variant trains the same network on the same device-resident synthetic data with the same
augmentation, so the ratios isolate what the trainer adds:
  plain          forward, backward, SGD step; nothing else
  ours/dense     the shared trainer with the dense pruner (hooks, masking call, metrics)
  ours/masked    the shared trainer at 90% sparsity (ERK mask applied after every step)
  naive/masked   the plain loop plus a per-layer Python masking loop (GraNet-style apply_mask)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from omegaconf import OmegaConf

from fggp_repro.config import OptimConfig, TrainConfig
from fggp_repro.data import make_synthetic, train_batches
from fggp_repro.masks import MaskSet
from fggp_repro.models import build_backbone
from fggp_repro.pruners import Dense, Pruner
from fggp_repro.trainer import make_optimizer, resolve_device, train

BACKBONES = {
    "vgg_tiny": {"arch": "vgg", "convs_per_stage": [1] * 5, "widths": [16, 32, 64, 64, 64]},
    "vgg19": {"arch": "vgg"},
    "resnet50": {"arch": "resnet"},
}


def fresh_model(backbone: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(OmegaConf.create({"name": backbone, **BACKBONES[backbone]})).to(device)


def plain_loop(model, data, optim_cfg, batch_size, steps, masks: MaskSet | None = None) -> float:
    """Images per second of the textbook loop (optionally masking layer by layer, GraNet-style)."""
    optimizer = make_optimizer(model, optim_cfg)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=optim_cfg.label_smoothing)
    generator = torch.Generator(device=data.train_x.device).manual_seed(0)

    def endless_batches():
        while True:
            yield from train_batches(data, batch_size, generator, drop_last=True)

    batches = endless_batches()
    warmup = max(steps // 10, 3)
    for i in range(warmup + steps):
        if i == warmup:
            synchronize(data.train_x.device)
            started = time.perf_counter()
        images, labels = next(batches)
        loss = criterion(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if masks is not None:
            with torch.no_grad():
                for weight, mask in zip(masks.weights, masks.masks, strict=True):
                    weight.mul_(mask)
                    optimizer.state[weight]["momentum_buffer"].mul_(mask)
    synchronize(data.train_x.device)
    return steps * batch_size / (time.perf_counter() - started)


def trainer_loop(model, pruner_factory, data, optim_cfg, batch_size, steps) -> float:
    """Images per second of the shared trainer, from its second epoch (the first warms up)."""
    masks = MaskSet.from_model(model)
    pruner = pruner_factory(masks)
    run_cfg = OmegaConf.structured(
        TrainConfig(epochs=2, batch_size=batch_size, drop_last=True, progress=False)
    )
    seconds: list[float] = []
    train(model, masks, pruner, data, optim_cfg, run_cfg, seed=0,
          on_epoch_end=[lambda state, row: seconds.append(row["epoch_seconds"])])  # fmt: skip
    return steps * batch_size / seconds[-1]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="vgg_tiny")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3, help="median of this many runs")
    args = parser.parse_args()

    device = resolve_device(args.device)
    data = make_synthetic(args.steps * args.batch_size, 1000, seed=0).to(device)
    optim_cfg = OmegaConf.structured(OptimConfig)
    steps, batch = args.steps, args.batch_size

    def sparse(masks: MaskSet) -> Pruner:
        return Pruner(masks, target_density=0.1, total_iterations=1, initial_density=0.1)

    def dense(masks: MaskSet) -> Pruner:
        return Dense(masks, target_density=1.0, total_iterations=1)

    def naive_masked() -> float:
        masks = MaskSet.from_model(model := fresh_model(args.backbone, device))
        sparse(masks).at_init(model, [])
        return plain_loop(model, data, optim_cfg, batch, steps, masks)

    variants = {
        "plain": lambda: plain_loop(
            fresh_model(args.backbone, device), data, optim_cfg, batch, steps
        ),
        "ours/dense": lambda: trainer_loop(
            fresh_model(args.backbone, device), dense, data, optim_cfg, batch, steps
        ),
        "ours/masked": lambda: trainer_loop(
            fresh_model(args.backbone, device), sparse, data, optim_cfg, batch, steps
        ),
        "naive/masked": naive_masked,
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit every variant
        for variant, measure in variants.items():
            samples[variant].append(measure())
    rates = {variant: statistics.median(values) for variant, values in samples.items()}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{args.backbone}, batch {batch}, {steps} timed steps on {name}, median of {args.repeats}"
    )
    for variant, rate in rates.items():
        print(f"  {variant:<13} {rate:10.0f} images/s")
    print(f"ratio ours/dense  / plain        {rates['ours/dense'] / rates['plain']:.3f}")
    print(f"ratio ours/masked / ours/dense   {rates['ours/masked'] / rates['ours/dense']:.3f}")
    print(f"ratio ours/masked / naive/masked {rates['ours/masked'] / rates['naive/masked']:.3f}")


if __name__ == "__main__":
    main()
