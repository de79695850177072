"""Extending the tool: a pruner, a backbone and a dataset defined in this very module, each one
YAML file in a config directory of its own, run through the command line with nothing else
edited; a variant of a shipped pruner as one YAML file; every preset and every pruner x backbone
x dataset composed and stepped; and the layering that makes it so (no Hydra in the library, no
import cycle)."""

import ast
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from conftest import REPO, compose, run_cli, spec
from omegaconf import OmegaConf
from torch import nn

from fggp_repro.cli.config import CONF_DIR, group_options
from fggp_repro.cli.main import pruner_descriptions
from fggp_repro.datasets.base import DataOptions
from fggp_repro.foundations.options import bounded
from fggp_repro.foundations.spec import INITIAL_DENSITY
from fggp_repro.models import build_backbone
from fggp_repro.pruners import build_pruner
from fggp_repro.pruners.gradual import GradualPruner
from fggp_repro.runs.experiment import run_experiment
from fggp_repro.runs.validation import validate
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.sparsity.selection import smallest_k
from fggp_repro.training.data import ImageData
from fggp_repro.training.state import TrainState
from fggp_repro.training.steps import train_step


@dataclass(frozen=True)
class LargestFirstOptions:
    keep_every: int = bounded(1, "[1, inf)")


class LargestFirst(GradualPruner):
    """A deliberately odd pruner: on the cubic schedule, prune the *largest* active weights."""

    options = LargestFirstOptions

    def __init__(self, masks, *, keep_every: int = 1, **schedule_and_target):
        super().__init__(masks, **schedule_and_target)
        self.keep_every = keep_every

    def select(self, k, iteration):
        return smallest_k(-self.masks.flat_weight_magnitudes(), self.masks.flat_mask(), k)


@dataclass(frozen=True)
class TwoLayerOptions:
    hidden: int = bounded(8, "[1, inf)")


def two_layer(num_classes: int, hidden: int = 8) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, hidden, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(hidden, num_classes))  # fmt: skip


two_layer.options = TwoLayerOptions


@dataclass(frozen=True)
class StripesOptions(DataOptions):
    """Class c: a bright horizontal stripe at row 4c of a dark image."""

    mean: list[float] = dataclasses.field(default_factory=lambda: [0.1, 0.1, 0.1])
    std: list[float] = dataclasses.field(default_factory=lambda: [0.3, 0.3, 0.3])
    train_size: int = bounded(128, "[1, inf)")

    def train_images(self) -> int:
        return self.train_size


def stripes(train_size: int = 128) -> ImageData:
    def draw(n, offset):
        labels = (torch.arange(n) + offset) % 4
        images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
        for i, label in enumerate(labels.tolist()):
            images[i, :, 8 * label : 8 * label + 4] = 255
        return images, labels

    return ImageData(*draw(train_size, 0), *draw(32, 1), num_classes=4, synthetic=True,
                     mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))  # fmt: skip


stripes.options = StripesOptions

PLUGINS = {
    "pruner/largest_first.yaml": "_target_: test_extending.LargestFirst\nname: largest_first\n"
    "keep_every: 1\n",
    "backbone/two_layer.yaml": "_target_: test_extending.two_layer\nname: two_layer\nhidden: 8\n",
    "data/stripes.yaml": "_target_: test_extending.stripes\nname: stripes\ntrain_size: 128\n"
    "mean: [0.1, 0.1, 0.1]\nstd: [0.3, 0.3, 0.3]\npadding: zeros\nholdout: 0.0\n",
    # a variant of a shipped pruner under a new name: one YAML file, no code
    "pruner/fggp_r03.yaml": "_target_: fggp_repro.pruners.two_stage.TwoStage\nname: fggp_r03\n"
    "order: gradient_first\nrate_policy: fixed\nrate: 0.3\nfinal_rate: 0.005\n",
}


@pytest.mark.slow
def test_a_pruner_backbone_and_dataset_of_ones_own_run_through_the_cli(tmp_path):
    conf = tmp_path / "my_conf"
    for name, text in PLUGINS.items():
        (conf / name).parent.mkdir(parents=True, exist_ok=True)
        (conf / name).write_text(text)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-m", "fggp_repro.cli.main", "--multirun", "--config-dir", str(conf),
            "experiment=demo", "train.epochs=2", "schedule.interval=2", "train.progress=false",
            "pruner=largest_first", "backbone=two_layer", "data=stripes",
            "train.batch_size=32", "masking.keep_first_conv_dense=false", "sparsity=0.5",
            f"output_root={tmp_path / 'out'}"]  # fmt: skip
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    records = {}
    for path in (tmp_path / "out").rglob("result.json"):
        record = json.loads(path.read_text())
        records[record["pruner"]] = record
    [record] = records.values()
    assert (record["pruner"], record["backbone"], record["dataset"]) == (
        "largest_first", "two_layer", "stripes")  # fmt: skip
    assert record["status"] == "completed" and record["achieved_sparsity"] > 0.45
    assert record["config"]["pruner"]["_target_"].endswith("LargestFirst")
    # the variant: composed from the same directory, the shipped class with its own options
    from fggp_repro.cli.config import compose_job, to_spec

    variant = to_spec(compose_job(["pruner=fggp_r03"], config_dirs=[conf])).pruner
    assert variant.builder is spec("pruner=fggp").pruner.builder
    assert variant.options.rate == 0.3
    listed = pruner_descriptions([conf])
    assert {"largest_first", "fggp_r03", "fggp"} <= set(listed) and listed["largest_first"] == ""


def test_a_plugin_yaml_with_a_misspelt_option_is_refused_in_one_line(tmp_path):
    (tmp_path / "pruner").mkdir()
    (tmp_path / "pruner" / "typo.yaml").write_text(
        "_target_: fggp_repro.pruners.gmp.GMP\nname: typo\nrat: 0.5\n"
    )
    result = run_cli("--config-dir", str(tmp_path), "pruner=typo", "output_root=/nonexistent/x")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "pruner" in result.stderr and "rat" in result.stderr


PRESETS = group_options("experiment")
COMBINATIONS = [(p, b, d) for p in group_options("pruner") for b in group_options("backbone")
                for d in group_options("data")]  # fmt: skip


#: a preset's job made tiny: synthetic stand-in data, 4 steps of 4 images, narrow networks (whose
#: density is counted over the prunable weights: the biases would outweigh a 95% target)
TINY = ["data=synthetic", "data.train_size=16", "data.test_size=8", "train.epochs=1",
        "train.batch_size=4", "train.eval_batch_size=8", "schedule.interval=1",
        "train.progress=false", "train.compile=none", "checkpoint.save_model=false",
        "masking.density_base=prunable"]  # fmt: skip
NARROW = {"widths": "backbone.widths=[4,4,4,4,4]", "base_width": "backbone.base_width=4"}


def preset_jobs(preset):
    """The preset's own job and the first job of each row of its sweep grid."""
    grid = OmegaConf.load(CONF_DIR / "experiment" / f"{preset}.yaml").get("hydra", {})
    rows = grid.get("sweeper", {}).get("grid", [])
    return [[], *([f"{axis}={values[0]}" for axis, values in row.items()] for row in rows)]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_a_tiny_version_of_each_of_its_rows_trains(preset, tmp_path):
    for i, job in enumerate(preset_jobs(preset)):
        assert spec(f"experiment={preset}", *job).output_root.startswith("results/")
        options = spec(f"experiment={preset}", *job, *TINY).backbone.options
        narrow = [o for key, o in NARROW.items() if hasattr(options, key)]
        run = spec(f"experiment={preset}", *job, *TINY, *narrow)
        record = run_experiment(run, tmp_path / str(i))
        assert record["status"] == "completed" and record["iterations"] == 4, (preset, job)


def test_every_pruner_backbone_and_dataset_composes_and_takes_a_step():
    """Each option composes as the CLI composes it; each combination is checked as the CLI
    checks it; each pruner then takes one training step on a narrow version of each
    architecture with CIFAR-100's 100 classes, and FGGP one on Fashion-MNIST's one channel."""
    torch.manual_seed(0)
    classes = {"cifar10": 10, "cifar100": 100, "synthetic": 10, "fashion_mnist": 10}
    narrow = {"widths": [4] * 5, "base_width": 4}
    base = spec("sparsity=0.9")
    plugins = {
        group: {name: getattr(spec(f"{group}={name}", "pruner.rounds=2" if name == "synflow"
                                   else "seed=1"), group) for name in group_options(group)}
        for group in ("pruner", "backbone", "data")
    }  # fmt: skip
    assert set(classes) == set(plugins["data"])
    stepped = set()
    for pruner, backbone, data in COMBINATIONS:
        chosen = {"pruner": plugins["pruner"][pruner], "backbone": plugins["backbone"][backbone],
                  "data": plugins["data"][data]}  # fmt: skip
        run = dataclasses.replace(base, **chosen)
        validate(run)
        key = (pruner, run.backbone.target, data)
        wanted = data == "cifar100" or (data == "fashion_mnist" and pruner == "fggp")
        if not wanted or key in stepped:
            continue  # a step per pruner and architecture, with a 100-class head
        stepped.add(key)
        shape = run.data.options.image_shape()
        options = run.backbone.options
        small = {k: v for k, v in narrow.items() if hasattr(options, k)}
        tiny = dataclasses.replace(run.backbone, options=dataclasses.replace(options, **small))
        model = build_backbone(tiny, classes[data], shape[0])
        masks = MaskSet.from_model(model, run.masking.keep_first_conv_dense)
        step_pruner = build_pruner(
            run.pruner, masks, target_density=0.1, total_iterations=4,
            initial_density=INITIAL_DENSITY[run.init], seed=0,
            schedule=dataclasses.replace(run.schedule, interval=1),
        )  # fmt: skip
        state = TrainState(model, masks, step_pruner, run.optim, seed=0)
        images, labels = torch.randn(4, *shape), torch.randint(classes[data], (4,))
        state.pruner.at_init(model, iter([(images, labels)]))
        loss, _ = train_step(state, images, labels, bf16=False)
        assert torch.isfinite(loss).all(), (pruner, backbone, data)


@pytest.mark.slow
def test_the_library_imports_no_hydra():
    code = (
        "import sys, fggp_repro; from fggp_repro import FGGP, MaskSet; "
        "import fggp_repro.runs.experiment, fggp_repro.training.trainer, "
        "fggp_repro.training.steps, fggp_repro.models.vgg, fggp_repro.models.resnet, "
        "fggp_repro.datasets.cifar100, fggp_repro.datasets.synthetic, fggp_repro.pruners, "
        "fggp_repro.runs.identity, fggp_repro.runs.validation, fggp_repro.reporting.collect; "
        "sys.exit(sorted(m for m in ('hydra', 'omegaconf') if m in sys.modules) or 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr


def imports_of(path, module):
    """The modules of this package a source file imports, at the top or inside functions."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m.split(".")[0] in ("fggp_repro", "hydra_plugins")} - {module}


@pytest.mark.slow
def test_no_import_cycle():
    src = REPO / "src"
    modules = {}
    for path in src.rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: imports_of(path, name) & set(modules) for name, path in modules.items()}
    # a package's __init__ importing its own submodules is how packages are built, not a cycle
    graph = {n: {m for m in deps if not m.startswith(f"{n}.")} for n, deps in graph.items()}
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                raise AssertionError(" -> ".join([*trail, node, dep]))
            if dep not in state:
                visit(dep, [*trail, node])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_composed_variant_and_original_build_the_same_class_with_other_options():
    fggp, mfgn = spec("pruner=fggp").pruner, spec("pruner=mfgn").pruner
    assert fggp.builder is mfgn.builder and fggp.options != mfgn.options
    assert compose("pruner=fggp").pruner._target_ == fggp.target
