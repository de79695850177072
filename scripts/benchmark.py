"""Throughput of the shared trainer against reference loops, measured in one run on one device.

    python scripts/benchmark.py                                  # on a GPU: VGG-19 and ResNet-50
    python scripts/benchmark.py --backbones vgg_tiny --steps 3   # a small CPU smoke run

Every variant trains a backbone built from conf/backbone/<name>.yaml at the same batch size on
synthetic CIFAR-shaped data, and reports images per second over `--steps` timed steps:
  (a) authors-style  torchvision DataLoader (PIL crop + flip, workers), fp32,
                     torch.nn.utils.prune hooks at 90%, loss.item() every step
  (b) plain          model + SGD on one fixed batch: no data pipeline, no masking, fp32
  (c) ours/dense     the shared trainer's step, eager fp32, dense
  (d) ours/fggp      the same with FGGP's masks at 95% (between pruning events)
  (e) ours/fastest   train.compile=reduce-overhead, bf16 and channels_last on a GPU
                     (the eager fp32 step on a CPU, where that is the default)
  (f) packed k       k processes each running (e) on the same device, images/s summed
It also times one pruning event of each pruner family and its share of a 160-epoch run, prints
the ratios and the GPU-hours of the README's grid, and writes results/bench/<device>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import fggp_repro.cli  # noqa: E402, F401  (registers the config schema)
from fggp_repro.compose import compose_job, to_spec  # noqa: E402
from fggp_repro.data import train_batches  # noqa: E402
from fggp_repro.datasets.synthetic import make_synthetic  # noqa: E402
from fggp_repro.estimate import slug  # noqa: E402
from fggp_repro.masks import MaskSet  # noqa: E402
from fggp_repro.models import build_backbone  # noqa: E402
from fggp_repro.pruners import Dense, build_pruner  # noqa: E402
from fggp_repro.records import device_name  # noqa: E402
from fggp_repro.spec import OptimSpec, ScheduleSpec  # noqa: E402
from fggp_repro.train_state import TrainState, make_optimizer  # noqa: E402
from fggp_repro.trainer import train_step  # noqa: E402

#: runs of the README's paper grid per backbone: 6 gradual pruners x 3 targets x 2 initial
#: states + 5 others x 3 targets + dense, each x 3 seeds
RUNS_PER_BACKBONE = (6 * 3 * 2 + 5 * 3 + 1) * 3
EPOCHS, IMAGES = 160, 50_000


def model_for(backbone: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(to_spec(compose_job([f"backbone={backbone}"])).backbone).to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, steps: int, batch: int, device: torch.device, warmup: int) -> float:
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps * batch / (time.perf_counter() - started)


def authors_style(backbone, device, batch, steps, warmup, workers) -> float:
    """(a): what the authors' script does per step, on synthetic PIL images."""
    import torchvision.transforms as T
    from torch.nn.utils import prune
    from torchvision.datasets import FakeData

    transform = T.Compose([
        T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
        T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ])  # fmt: skip
    dataset = FakeData(size=(steps + warmup) * batch, image_size=(3, 32, 32), transform=transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True
    )
    model = model_for(backbone, device)
    layers = [
        (m, "weight") for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    prune.global_unstructured(layers[1:], pruning_method=prune.L1Unstructured, amount=0.9)
    optimizer = make_optimizer(model, OptimSpec())
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    batches = iter(loader)

    def step() -> None:
        images, labels = next(batches)
        images, labels = images.to(device), labels.to(device)
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()

    return timed(step, steps, batch, device, warmup)


def plain(backbone, device, batch, steps, warmup) -> float:
    """(b): forward, backward and SGD on one fixed batch."""
    model = model_for(backbone, device)
    optimizer = make_optimizer(model, OptimSpec())
    images = torch.randn(batch, 3, 32, 32, device=device)
    labels = torch.randint(10, (batch,), device=device)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(step, steps, batch, device, warmup)


def ours(backbone, device, batch, steps, warmup, pruner: str, fastest: bool) -> float:
    """(c), (d), (e): the trainer's own step on device-resident data."""
    model = model_for(backbone, device)
    fast_gpu = fastest and device.type == "cuda"
    if fast_gpu:
        model = model.to(memory_format=torch.channels_last)
    masks = MaskSet.from_model(model)
    data = make_synthetic((steps + warmup) * batch, 8, seed=0).to(device)
    if pruner == "dense":
        chosen = Dense(masks, target_density=1.0, total_iterations=10**9)
    else:  # FGGP's masks at 95%; timed far from any pruning event
        chosen = build_pruner(
            to_spec(compose_job([f"pruner={pruner}"])).pruner, masks, target_density=0.05,
            total_iterations=10**9, initial_density=0.05, seed=0,
            schedule=ScheduleSpec(interval=10**8),
        )  # fmt: skip
    state = TrainState(model, masks, chosen, OptimSpec(), seed=0)
    state.begin(data, batch)
    state.iteration = 1
    if fast_gpu:
        state.memory_format = torch.channels_last
        state.compile("reduce-overhead")
    generator = state.data_generator

    def endless():
        while True:
            yield from train_batches(
                data, batch, generator, True, memory_format=state.memory_format
            )

    batches = endless()

    def step() -> None:
        images, labels = next(batches)
        train_step(state, images, labels, bf16=fast_gpu)

    return timed(step, steps, batch, device, warmup)


def pruning_event_seconds(backbone, device, batch) -> dict[str, float]:
    """One pruning event of each family, from a dense start (gradual) or at initialisation."""
    events = {}
    data = make_synthetic(4 * batch, 8, seed=0).to(device)
    for name in ("gmp", "fggp", "granet", "rigl", "set", "snip", "grasp", "synflow"):
        model = model_for(backbone, device)
        masks = MaskSet.from_model(model)
        cfg = to_spec(compose_job([f"pruner={name}"]))
        pruner = build_pruner(
            cfg.pruner, masks, target_density=0.05, total_iterations=10_000, initial_density=1.0,
            seed=0, schedule=ScheduleSpec(interval=1, end_fraction=cfg.schedule.end_fraction),
        )  # fmt: skip
        generator = torch.Generator(device=device).manual_seed(0)
        images, labels = next(train_batches(data, batch, generator))
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        synchronize(device)
        started = time.perf_counter()
        if name in ("snip", "grasp", "synflow"):
            pruner.at_init(model, iter([(images, labels)]))
        elif name in ("granet", "rigl", "set"):
            if name != "granet":
                pruner.at_init(model, [])
                synchronize(device)
                started = time.perf_counter()
            pruner.after_step(0)
        else:
            pruner.after_backward(1)
        synchronize(device)
        events[name] = time.perf_counter() - started
    return events


def packed(args, k: int) -> float:
    """(f): k concurrent processes of (e) on one device; their images/s summed."""
    command = [sys.executable, __file__, "--worker", "--backbones", args.backbones[0],
               "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--device", args.device]  # fmt: skip
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(k)]
    return sum(float(w.communicate()[0].split()[-1]) for w in workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["vgg19", "resnet50"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers for (a)")
    parser.add_argument("--pack", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    warmup = max(args.steps // 10, 3) + (20 if device.type == "cuda" else 0)
    batch, steps = args.batch_size, args.steps
    if args.worker:
        print(ours(args.backbones[0], device, batch, steps, warmup, "dense", fastest=True))
        return
    report = {"device": device_name(device), "torch": torch.__version__,
              "date": datetime.date.today().isoformat(), "batch_size": batch, "steps": steps,
              "backbones": {}}  # fmt: skip
    for backbone in args.backbones:
        rates = {
            "a_authors_style": authors_style(backbone, device, batch, steps, warmup, args.workers),
            "b_plain": plain(backbone, device, batch, steps, warmup),
            "c_ours_dense": ours(backbone, device, batch, steps, warmup, "dense", fastest=False),
            "d_ours_fggp": ours(backbone, device, batch, steps, warmup, "fggp", fastest=False),
            "e_ours_fastest": ours(backbone, device, batch, steps, warmup, "dense", fastest=True),
        }
        pack = {k: packed(argparse.Namespace(**{**vars(args), "backbones": [backbone]}), k)
                for k in args.pack if device.type == "cuda"}  # fmt: skip
        events = pruning_event_seconds(backbone, device, batch)
        best = max([rates["e_ours_fastest"], *pack.values()])
        run_seconds = EPOCHS * IMAGES / rates["e_ours_fastest"]
        gradual_events = 0.8 * EPOCHS * IMAGES / batch / 2000
        entry = {
            "images_per_second": rates,
            "packed_images_per_second": pack,
            "ratios": {
                "e/a": rates["e_ours_fastest"] / rates["a_authors_style"],
                "d/c": rates["d_ours_fggp"] / rates["c_ours_dense"],
                "c/b": rates["c_ours_dense"] / rates["b_plain"],
            },
            "pruning_event_seconds": events,
            "pruning_share_of_a_run": {
                name: seconds
                * (1 if name in ("snip", "grasp", "synflow") else gradual_events)
                / run_seconds
                for name, seconds in events.items()
            },
            "grid_gpu_hours": RUNS_PER_BACKBONE * EPOCHS * IMAGES / best / 3600,
        }
        report["backbones"][backbone] = entry
        print(f"{backbone}, batch {batch}, {steps} timed steps on {report['device']}")
        for name, rate in {**rates, **{f"f_packed_{k}": v for k, v in pack.items()}}.items():
            print(f"  {name:<18} {rate:10.0f} images/s")
        for name, ratio in entry["ratios"].items():
            print(f"  ratio {name:<5} {ratio:.3f}")
        for name, share in entry["pruning_share_of_a_run"].items():
            print(f"  pruning {name:<8} {events[name] * 1000:9.1f} ms per event, "
                  f"{100 * share:.3f}% of a run")  # fmt: skip
        print(f"  grid of {RUNS_PER_BACKBONE} runs: {entry['grid_gpu_hours']:.1f} device-hours")
    total = sum(e["grid_gpu_hours"] for e in report["backbones"].values())
    report["grid_gpu_hours_total"] = total
    print(f"whole grid: {total:.1f} device-hours (estimate from these rates)")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{slug(report['device'])}.json"  # where dry runs look for it
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
