"""Throughput and wall time of the shared trainer against reference loops, in one run on one
device. Needs torch and this checkout only (no Hydra): it runs as it is on a bare GPU machine.

    python scripts/benchmark.py                                  # on a GPU: VGG-19 and ResNet-50
    python scripts/benchmark.py --backbones vgg_tiny --steps 3   # a small CPU smoke run

Every variant trains a backbone built from conf/backbone/<name>.yaml at the same batch size on
synthetic CIFAR-shaped data and reports images per second over `--steps` timed steps:
  authors_style  torchvision DataLoader (PIL crop + flip, workers), fp32, torch.nn.utils.prune
                 hooks at 90%, loss.item() every step: what the authors' script does per step
  plain          model + SGD on one fixed batch: no data pipeline, no masking, eager fp32
  eager          the trainer's step, eager (train.compile=none), fp32, dense
  default        the trainer's default step on this device (train.compile=auto: the captured
                 CUDA graph and channels_last on a GPU, eager on a CPU), fp32, dense
  default_fggp   the same with FGGP's masks at 95% (between pruning events)
  default_bf16   the same, dense, with train.bf16=true
  compiled       train.compile=default (torch.compile, no CUDA graphs), fp32; only with
                 --compiled (compiling VGG-19 or ResNet-50 takes minutes)
It also measures k packed processes of `default` on one device over one common time window,
the wall time of short real epochs on the default path with a checkpoint after each, and one
pruning event of each pruner family with its share of a 160-epoch run. Each variant is guarded
(a failure is recorded, the others still run) and the report is rewritten after each one, to
results/bench/<device>.json, where the dry run's time estimates look for it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fggp_repro.cli.estimate import slug  # noqa: E402
from fggp_repro.datasets.synthetic import make_synthetic  # noqa: E402
from fggp_repro.foundations.spec import CompileMode, OptimSpec, PluginSpec, ScheduleSpec, TrainSpec  # noqa: E402
from fggp_repro.models import build_backbone  # noqa: E402
from fggp_repro.pruners import Dense, build_pruner  # noqa: E402
from fggp_repro.runs.records import device_name  # noqa: E402
from fggp_repro.sparsity.masks import MaskSet  # noqa: E402
from fggp_repro.training.checkpoints import save_checkpoint  # noqa: E402
from fggp_repro.training.data import train_batches  # noqa: E402
from fggp_repro.training.state import TrainState, make_optimizer  # noqa: E402
from fggp_repro.training.steps import step_path_for  # noqa: E402
from fggp_repro.training.trainer import run, set_determinism  # noqa: E402

#: runs of the README's paper grid per backbone: 6 gradual pruners x 3 targets x 2 initial
#: states + 5 others x 3 targets + dense, each x 3 seeds
RUNS_PER_BACKBONE = (6 * 3 * 2 + 5 * 3 + 1) * 3
EPOCHS, IMAGES = 160, 50_000
#: the share of a run's steps in which each family's pruning events fall, and how often
EVENT_WINDOW = {"gmp": 0.8, "fggp": 0.8, "granet": 1.0, "rigl": 0.75, "set": 0.75}
ONE_SHOT = ("snip", "grasp", "synflow")
INTERVAL = 2000


def read_flat_yaml(path: Path) -> dict[str, Any]:
    """A config file of `key: value` lines (numbers, true/false, bare words, [lists]), as the
    shipped backbone and pruner files are; comments dropped."""
    values: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        if text.startswith((" ", "\t")) or ":" not in text:
            raise ValueError(f"{path}: not a flat config line: {line!r}")
        key, raw = (part.strip() for part in text.split(":", 1))
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values


def plugin(group: str, name: str) -> PluginSpec:
    """conf/<group>/<name>.yaml as a PluginSpec, typed by its target's options."""
    from fggp_repro.foundations.spec import locate

    values = read_flat_yaml(REPO / "conf" / group / f"{name}.yaml")
    target = values.pop("_target_")
    values.pop("name", None)
    return PluginSpec(name, target, locate(target).options(**values))


def model_for(backbone: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(plugin("backbone", backbone)).to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], object], steps: int, batch: int, device, warmup: int) -> float:
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps * batch / (time.perf_counter() - started)


def authors_style(backbone, device, batch, steps, warmup, workers) -> float:
    """What the authors' script does per step, on synthetic PIL images."""
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
    """Forward, backward and SGD on one fixed batch."""
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


def trainer_state(backbone: str, device: torch.device, images: int, masked: bool):
    """A TrainState as a run would build it (channels_last on a GPU), on `images` synthetic
    training images; FGGP's masks at 95% when `masked`."""
    model = model_for(backbone, device)
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    masks = MaskSet.from_model(model)
    data = make_synthetic(images, 1000, seed=0).to(device)
    if masked:  # an ERK mask at 95%, timed far from any pruning event
        pruner = build_pruner(
            plugin("pruner", "fggp"), masks, target_density=0.05, total_iterations=10**9,
            initial_density=0.05, seed=0, schedule=ScheduleSpec(interval=10**8),
        )  # fmt: skip
    else:
        pruner = Dense(masks, target_density=1.0, total_iterations=10**9)
    state = TrainState(model, masks, pruner, OptimSpec(milestones=[10**6]), seed=0)
    if channels_last:
        state.memory_format = torch.channels_last
    return state, data


def endless_batches(state: TrainState, data, batch: int):
    """Full training batches as a run makes them, epoch after epoch."""
    while True:
        yield from train_batches(
            data, batch, state.data_generator, True, memory_format=state.memory_format
        )


def ours(backbone, device, batch, steps, warmup, mode, masked=False, bf16=False) -> float:
    """The trainer's own step on device-resident data, on the step path `mode` gives here."""
    state, data = trainer_state(backbone, device, (steps + warmup) * batch, masked)
    state.begin(data, batch)
    state.iteration = 1
    path = step_path_for(mode, state, batch, bf16, device)
    batches = endless_batches(state, data, batch)
    return timed(lambda: path.step(*next(batches)), steps, batch, device, warmup)


def epoch_wall(backbone, device, batch, images: int) -> dict[str, float]:
    """Two real epochs on the default path, a checkpoint written after each (the worst
    cadence), test after the last: what a run's wall time holds besides its steps."""
    state, data = trainer_state(backbone, device, images, False)
    state.begin(data, batch)
    spec = TrainSpec(epochs=2, batch_size=batch, device=str(device), progress=False)
    path = step_path_for(CompileMode.auto, state, batch, False, device)
    writes: list[float] = []
    with tempfile.TemporaryDirectory() as directory:

        def checkpoint(state_now: TrainState, row: dict) -> None:
            started = time.perf_counter()
            save_checkpoint(Path(directory), state_now.state_dict(), state_now.iteration, 2)
            writes.append(time.perf_counter() - started)

        outcome = run(state, data, spec, [checkpoint], path=path)
    rate = outcome.images_per_second
    checkpoint_seconds = sum(writes) / len(writes)
    cifar_epoch = IMAGES / rate
    return {
        "epoch_images": images,
        "train_images_per_second": rate,
        "wall_seconds_per_epoch": state.wall_seconds / state.epoch,
        "checkpoint_seconds": checkpoint_seconds,
        "setup_seconds": state.step_report.setup_seconds,
        "captures": state.step_report.captures,
        "cifar_epoch_train_seconds": cifar_epoch,
        "checkpoint_share_every_epoch": checkpoint_seconds / (cifar_epoch + checkpoint_seconds),
        "checkpoint_share_default_cadence": checkpoint_seconds / max(cifar_epoch, 300.0),
    }


def pruning_event_seconds(backbone, device, batch) -> dict[str, float]:
    """One pruning event of each family, from a dense start (gradual) or at initialisation."""
    events = {}
    data = make_synthetic(4 * batch, 8, seed=0).to(device)
    for name in ("gmp", "fggp", "granet", "rigl", "set", *ONE_SHOT):
        model = model_for(backbone, device)
        masks = MaskSet.from_model(model)
        pruner = build_pruner(
            plugin("pruner", name), masks, target_density=0.05, total_iterations=10_000,
            initial_density=1.0, seed=0, schedule=ScheduleSpec(interval=1),
        )  # fmt: skip
        generator = torch.Generator(device=device).manual_seed(0)
        images, labels = next(train_batches(data, batch, generator))
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        synchronize(device)
        started = time.perf_counter()
        if name in ONE_SHOT:
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


def worker(args, device) -> None:
    """One packed process: warm up `default`, say so, then step through the window the parent
    names (wall-clock start and end) and print its images per second inside it."""
    backbone, batch = args.backbones[0], args.batch_size
    images = max(20, args.steps) * batch
    state, data = trainer_state(backbone, device, images, False)
    state.begin(data, batch)
    state.iteration = 1
    path = step_path_for(CompileMode.auto, state, batch, False, device)
    batches = endless_batches(state, data, batch)
    for _ in range(args.warmup):
        path.step(*next(batches))
    synchronize(device)
    print("ready", flush=True)
    start, end = (float(x) for x in sys.stdin.readline().split())
    marks: list[tuple[float, int]] = []
    done = 0
    while not marks or marks[-1][0] < end:
        for _ in range(10):
            path.step(*next(batches))
        synchronize(device)
        done += 10 * batch
        marks.append((time.time(), done))
    inside = [(t, n) for t, n in marks if start <= t <= end]
    if len(inside) < 2:
        raise SystemExit("the window was too short for ten steps")
    (t0, n0), (t1, n1) = inside[0], inside[-1]
    print((n1 - n0) / (t1 - t0), flush=True)


def read_line(process: subprocess.Popen, deadline: float) -> str:
    """The next line a worker prints, or "" when it prints none before the deadline."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=max(deadline - time.monotonic(), 0)):
            return ""
    return process.stdout.readline().strip()


def packed(args, backbone: str, k: int) -> float:
    """k processes of `default` on one device, images/s summed over one common window."""
    command = [sys.executable, __file__, "--worker", "--backbones", backbone, "--batch-size",
               str(args.batch_size), "--steps", str(args.steps), "--device", args.device,
               "--warmup", str(args.warmup)]  # fmt: skip
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(k)
    ]
    try:
        deadline = time.monotonic() + 240
        for process in workers:
            if read_line(process, deadline) != "ready":
                raise RuntimeError("a packed worker failed before the window")
        start = time.time() + 1.0
        for process in workers:
            process.stdin.write(f"{start} {start + args.window}\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=args.window + 300)[0] for process in workers]
        if any(process.returncode for process in workers):
            raise RuntimeError("a packed worker failed in the window")
        return sum(float(out.split()[-1]) for out in outputs)
    finally:
        for process in workers:
            process.kill()


class Report:
    """The JSON report, written again after every measurement, so a crash loses nothing."""

    def __init__(self, path: Path, header: dict[str, Any]):
        self.path, self.data = path, {**header, "backbones": {}}

    def measure(self, backbone: str, section: str, name: str, measurement: Callable[[], Any]):
        entry = self.data["backbones"].setdefault(backbone, {})
        try:
            value = measurement()
        except Exception as error:  # one failing variant must not cost the others
            value = None
            entry.setdefault("errors", {})[name] = "".join(traceback.format_exception(error))
            print(f"  {name:<22} failed: {type(error).__name__}: {error}", flush=True)
        if section:
            entry.setdefault(section, {})[name] = value
        else:
            entry[name] = value
        self.write()
        return value

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2) + "\n")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def summarize(entry: dict[str, Any], batch: int) -> None:
    """Ratios against the targets, pruning shares of a run and the grid's device-hours."""
    rates = entry.get("images_per_second", {})
    authors = rates.get("authors_style")
    entry["ratios"] = {
        "default/authors_style": ratio(rates.get("default"), authors),
        "default_bf16/authors_style": ratio(rates.get("default_bf16"), authors),
        "default_fggp/default": ratio(rates.get("default_fggp"), rates.get("default")),
        "eager/plain": ratio(rates.get("eager"), rates.get("plain")),
        "default/eager": ratio(rates.get("default"), rates.get("eager")),
    }
    events, default = entry.get("pruning_event_seconds") or {}, rates.get("default")
    if default:
        run_seconds = EPOCHS * IMAGES / default
        steps = EPOCHS * math.ceil(IMAGES / batch)
        entry["pruning_share_of_a_run"] = {
            name: seconds
            * (1 if name in ONE_SHOT else EVENT_WINDOW[name] * steps / INTERVAL)
            / run_seconds
            for name, seconds in events.items()
        }
        packed_rates = entry.get("packed_images_per_second", {}).values()
        best = max([default, *(rate for rate in packed_rates if rate)])
        entry["grid_device_hours"] = RUNS_PER_BACKBONE * EPOCHS * IMAGES / best / 3600


def measure_backbone(report: Report, backbone: str, variants, args, device, epoch_images: int):
    """Every variant, the packed processes, the epoch wall time and the pruning events of one
    backbone, each written to the report as soon as it is measured."""
    batch, name = args.batch_size, report.data["device"]
    print(f"{backbone}, batch {batch}, {args.steps} timed steps on {name}", flush=True)
    for variant, measurement in variants.items():
        rate = report.measure(backbone, "images_per_second", variant,
                              lambda m=measurement: m(backbone))  # fmt: skip
        if rate is not None:
            print(f"  {variant:<22} {rate:10.0f} images/s", flush=True)
    for k in args.pack if device.type == "cuda" else []:
        rate = report.measure(backbone, "packed_images_per_second", str(k),
                              lambda k=k: packed(args, backbone, k))  # fmt: skip
        if rate is not None:
            print(f"  packed {k:<15} {rate:10.0f} images/s (summed)", flush=True)
    wall = report.measure(backbone, "", "epoch_wall",
                          lambda: epoch_wall(backbone, device, batch, epoch_images))  # fmt: skip
    if wall is not None:
        print(f"  epoch wall time        {wall['wall_seconds_per_epoch']:.3f} s per "
              f"{epoch_images} images, checkpoint {wall['checkpoint_seconds']:.3f} s, "
              f"setup {wall['setup_seconds']:.2f} s", flush=True)  # fmt: skip
    report.measure(backbone, "", "pruning_event_seconds",
                   lambda: pruning_event_seconds(backbone, device, batch))  # fmt: skip
    entry = report.data["backbones"][backbone]
    summarize(entry, batch)
    report.write()
    for key, value in entry["ratios"].items():
        print(f"  ratio {key:<28} {'-' if value is None else f'{value:.3f}'}")
    for key, share in entry.get("pruning_share_of_a_run", {}).items():
        print(f"  pruning {key:<8} {entry['pruning_event_seconds'][key] * 1000:9.1f} ms per "
              f"event, {100 * share:.3f}% of a run")  # fmt: skip
    if "grid_device_hours" in entry:
        print(f"  grid of {RUNS_PER_BACKBONE} runs: {entry['grid_device_hours']:.1f} "
              "device-hours")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["vgg19", "resnet50"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers (authors)")
    parser.add_argument("--pack", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--window", type=float, default=5.0, help="packed window, seconds")
    parser.add_argument(
        "--epoch-images",
        type=int,
        default=None,
        help="training images of the wall-time epochs (GPU 10000, CPU 512)",
    )
    parser.add_argument("--compiled", action="store_true", help="also time train.compile=default")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    args.device = str(device)
    set_determinism(False)  # as a run with train.deterministic=false: cuDNN benchmarks
    if args.warmup is None:
        args.warmup = max(args.steps // 10, 3) + (20 if device.type == "cuda" else 0)
    if args.worker:
        worker(args, device)
        return
    batch, steps, warmup = args.batch_size, args.steps, args.warmup
    epoch_images = args.epoch_images or (10_000 if device.type == "cuda" else 512)
    name = device_name(device)
    report = Report(args.out / f"{slug(name)}.json", {
        "device": name, "torch": torch.__version__, "date": datetime.date.today().isoformat(),
        "batch_size": batch, "steps": steps, "warmup": warmup,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    })  # fmt: skip
    auto, none = CompileMode.auto, CompileMode.none
    variants: dict[str, Callable[[str], float]] = {
        "authors_style": lambda b: authors_style(b, device, batch, steps, warmup, args.workers),
        "plain": lambda b: plain(b, device, batch, steps, warmup),
        "eager": lambda b: ours(b, device, batch, steps, warmup, none),
        "default": lambda b: ours(b, device, batch, steps, warmup, auto),
        "default_fggp": lambda b: ours(b, device, batch, steps, warmup, auto, masked=True),
        "default_bf16": lambda b: ours(b, device, batch, steps, warmup, auto, bf16=True),
    }
    if args.compiled:
        variants["compiled"] = lambda b: ours(b, device, batch, steps, warmup,
                                              CompileMode.default)  # fmt: skip
    for backbone in args.backbones:
        measure_backbone(report, backbone, variants, args, device, epoch_images)
    print(f"written: {report.path}")


if __name__ == "__main__":
    main()
