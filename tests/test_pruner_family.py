"""Every pruner, through the config and the CLI: it composes and runs on both real backbones,
a short synthetic run ends at exactly the target, and axes it has no use for are refused."""

import json

import pytest
import torch
from conftest import run_cli, spec

from fggp_repro.cli.config import group_options
from fggp_repro.foundations.spec import INITIAL_DENSITY, ScheduleSpec
from fggp_repro.models import build_backbone
from fggp_repro.pruners import build_pruner
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.training.state import make_optimizer

NAMES = group_options("pruner")
SPEEDUPS = {"synflow": ["pruner.rounds=2"]}


def test_the_twelve_pruners_of_the_paper_and_its_baselines_have_config_files():
    assert len(NAMES) == 12 and {"fggp", "mfgn_annealed", "granet", "dense"} <= set(NAMES)


#: two-stage selection, ERK and regrowth, and Hessian scoring, tried at full size (every pruner
#: takes a step on every backbone, narrowed, in test_extending)
FULL_SIZE = ["fggp", "rigl", "grasp"]


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet50"])  # vgg19 at full size: test_models_data_config
def test_whole_network_pruners_run_a_step_on_the_real_backbones(backbone):
    torch.manual_seed(0)
    batches = [(torch.randn(2, 3, 32, 32), torch.randint(10, (2,))) for _ in range(3)]
    model = build_backbone(spec(f"backbone={backbone}").backbone)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name in FULL_SIZE:
        cfg = spec(f"backbone={backbone}", f"pruner={name}", "sparsity=0.98",
                   *SPEEDUPS.get(name, []))  # fmt: skip
        model.load_state_dict(state)
        masks = MaskSet.from_model(model, cfg.masking.keep_first_conv_dense)
        pruner = build_pruner(
            cfg.pruner, masks, target_density=0.02, total_iterations=10,
            initial_density=INITIAL_DENSITY[cfg.init], seed=0,
            schedule=ScheduleSpec(interval=2, end_fraction=cfg.schedule.end_fraction),
        )  # fmt: skip
        optimizer = make_optimizer(model, cfg.optim)
        pruner.at_init(model, iter(batches))
        images, labels = batches[0]
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        pruner.after_backward(0)
        optimizer.step()
        masks.apply_(optimizer)
        pruner.after_step(1)
        expected = masks.numel if name == "dense" else masks.active_count
        assert int(masks.flat_mask().sum()) == expected, name
        if name in ("rigl", "set", "snip", "grasp", "synflow"):
            assert masks.active_count == round(0.02 * masks.numel), name
        model.zero_grad(set_to_none=True)


@pytest.fixture(scope="module")
def every_pruner_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("family")
    result = run_cli(
        "--multirun", "experiment=demo", "train.epochs=2", "data.train_size=256",
        "data.test_size=128", "schedule.interval=2", "train.progress=false",
        "sparsity=0.9", f"pruner={','.join(NAMES)}", f"output_root={root}",
        "seed=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [json.loads(path.read_text()) for path in root.rglob("result.json")]
    return {record["pruner"]: record for record in records}


@pytest.mark.parametrize("name", NAMES)
def test_short_run_of_every_pruner_ends_at_exactly_the_target(every_pruner_run, name):
    record = every_pruner_run[name]
    assert record["status"] == "completed"
    layers = record["per_layer"]
    active = sum(layer["active"] for layer in layers)
    assert sum(layer["numel"] for layer in layers) == record["params_prunable"]
    assert all(layer["density"] == layer["active"] / layer["numel"] for layer in layers)
    traits = spec(f"pruner={name}").pruner.builder.traits
    uses_target, uses_init = traits.uses_target, traits.uses_initial_state
    base, prunable = record["params_conv_linear"], record["params_prunable"]
    target = round(0.1 * base) - (base - prunable) if uses_target else prunable
    assert active == target
    assert record["init"] == ("dense" if uses_init else "n/a")


@pytest.mark.parametrize("name", ["dense", "rigl", "set", "snip", "grasp", "synflow"])
def test_sparse50_is_refused_where_the_initial_state_means_nothing(name):
    result = run_cli(f"pruner={name}", "init=sparse50", "sparsity=0.9", "output_root=/nonexistent")
    assert result.returncode == 2
    assert result.stderr.startswith(f"fggp-repro: error: pruner={name} has no initial-state axis")


def test_pruner_list_has_one_line_per_pruner():
    result = run_cli("--pruners")
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    assert all(len(line.split(maxsplit=1)[1]) > 20 for line in lines)
