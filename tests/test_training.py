"""Short training runs on synthetic data: exact final sparsity, and masked weights and their
momentum exactly zero after every optimizer step, for every pruner and initial state."""

import pytest
import torch
from conftest import SmallConvNet, spec

from fggp_repro.datasets.synthetic import make_synthetic
from fggp_repro.foundations.spec import OptimSpec, ScheduleSpec, TrainSpec
from fggp_repro.models import build_backbone
from fggp_repro.pruners import FGGP, GMP, Dense
from fggp_repro.sparsity.erk import erk_counts
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.training import state as train_state
from fggp_repro.training.data import iterations_per_epoch
from fggp_repro.training.state import make_optimizer
from fggp_repro.training.trainer import train


@pytest.fixture(scope="module")
def data():
    return make_synthetic(512, 256, seed=0)


def configs(epochs: int = 3):
    optim = OptimSpec(lr=0.1, milestones=[2])
    run = TrainSpec(epochs=epochs, batch_size=64, progress=False)
    return optim, run


def masked_entries_are_zero(masks: MaskSet, optimizer_state) -> bool:
    for weight, mask in zip(masks.weights, masks.masks):
        if weight[mask == 0].abs().sum() != 0:
            return False
        buffer = optimizer_state.get(weight, {}).get("momentum_buffer")
        if buffer is not None and buffer[mask == 0].abs().sum() != 0:
            return False
    return True


class Watched:
    """Wraps a pruner; after every step checks the invariant on the trainer's own optimizer."""

    def __init__(self, pruner, masks, optimizers):
        self.pruner, self.masks, self.optimizers, self.violations = pruner, masks, optimizers, 0

    def __getattr__(self, name):
        return getattr(self.pruner, name)

    def after_step(self, iteration):
        self.pruner.after_step(iteration)
        self.violations += not masked_entries_are_zero(self.masks, self.optimizers[0].state)


@pytest.fixture
def optimizers(monkeypatch):
    """Every optimizer the trainer creates."""
    created = []

    def capture(model, optim):
        created.append(make_optimizer(model, optim))
        return created[-1]

    monkeypatch.setattr(train_state, "make_optimizer", capture)
    return created


@pytest.mark.parametrize("name", ["gmp", "fggp"])
@pytest.mark.parametrize("initial_density", [1.0, 0.5])
def test_run_ends_at_exact_target_with_zero_masked_weights_and_momentum(
    data, optimizers, name, initial_density
):
    torch.manual_seed(0)
    model = SmallConvNet()
    masks = MaskSet.from_model(model)
    optim, run = configs()
    total = run.epochs * iterations_per_epoch(512, run.batch_size, False)
    pruner = {"gmp": GMP, "fggp": FGGP}[name](
        masks,
        target_density=0.1,
        total_iterations=total,
        initial_density=initial_density,
        seed=3,
        interval=3,
    )
    watched = Watched(pruner, masks, optimizers)
    outcome = train(model, masks, watched, data, optim, run, seed=0)

    target = round(0.1 * masks.numel)
    nonzero = sum(int(torch.count_nonzero(w)) for w in masks.weights)
    assert masks.active_count == target == int(masks.flat_mask().sum())
    assert nonzero == target
    assert watched.violations == 0
    assert masked_entries_are_zero(masks, optimizers[0].state)
    assert all(optimizers[0].state[w]["momentum_buffer"] is not None for w in masks.weights)
    assert outcome.iterations == total
    assert 0.0 <= outcome.final_test_acc <= 100.0


def test_sparse50_start_is_erk_with_exact_counts():
    torch.manual_seed(0)
    model = SmallConvNet()
    masks = MaskSet.from_model(model)
    pruner = GMP(
        masks, target_density=0.1, total_iterations=100, initial_density=0.5, seed=7, interval=10
    )
    pruner.at_init(model, [])
    expected = erk_counts([w.shape for w in masks.weights], round(0.5 * masks.numel))
    assert [int(m.sum()) for m in masks.masks] == expected
    assert [int(torch.count_nonzero(w)) for w in masks.weights] == expected
    assert masks.active_count == round(0.5 * masks.numel)


def test_dense_pruner_keeps_every_weight(data):
    torch.manual_seed(0)
    model = SmallConvNet()
    masks = MaskSet.from_model(model)
    optim, run = configs(epochs=1)
    pruner = Dense(masks, target_density=0.1, total_iterations=8, initial_density=0.5)
    train(model, masks, pruner, data, optim, run, seed=0)
    assert masks.active_count == masks.numel


def test_small_model_clearly_beats_chance_on_synthetic_data():
    torch.manual_seed(0)
    data = make_synthetic(1024, 512, seed=1)
    model = build_backbone(spec("backbone=vgg_tiny").backbone)
    masks = MaskSet.from_model(model)
    _, run = configs(epochs=5)
    optim = OptimSpec(milestones=[4])  # the protocol's lr 0.1
    pruner = Dense(masks, target_density=1.0, total_iterations=80)
    outcome = train(model, masks, pruner, data, optim, run, seed=0)
    assert outcome.final_test_acc > 40.0  # chance is 10%


@pytest.mark.parametrize("name", ["fggp", "set"])
def test_same_seed_same_run(data, name):
    """Data order, augmentation, initial masks and random regrowth all follow the seed."""
    from fggp_repro.pruners import build_pruner

    outcomes = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SmallConvNet()
        masks = MaskSet.from_model(model)
        optim, run = configs(epochs=2)
        pruner = build_pruner(
            spec(f"pruner={name}").pruner, masks, target_density=0.2, total_iterations=16,
            initial_density=0.5, seed=5, schedule=ScheduleSpec(interval=2),
        )  # fmt: skip
        outcome = train(model, masks, pruner, data, optim, run, seed=5)
        outcomes.append((outcome.final_test_acc, masks.flat_mask(), model.fc.weight.detach()))
    assert outcomes[0][0] == outcomes[1][0]
    assert torch.equal(outcomes[0][1], outcomes[1][1])
    assert torch.equal(outcomes[0][2], outcomes[1][2])
