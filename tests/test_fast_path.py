"""The fast path computes the same training as the eager path: torch.compile'd steps against
eager ones (losses and masks through pruning events), no recompilation after a mask update, no
host sync in a steady-state GPU step, and jobs spread over the GPUs of a machine."""

import pytest
import torch
from conftest import SmallConvNet

from fggp_repro.data import train_batches
from fggp_repro.datasets.synthetic import make_synthetic
from fggp_repro.devices import take_slot
from fggp_repro.masks import MaskSet
from fggp_repro.pruners import FGGP
from fggp_repro.spec import OptimSpec
from fggp_repro.train_state import TrainState
from fggp_repro.trainer import train_step

STEPS = 8


def training(device: str, compile_backend: str | None, mode: str = "default"):
    """Per-step losses and the masks after STEPS steps of FGGP (pruning every 2 steps)."""
    torch.manual_seed(0)
    data = make_synthetic(STEPS * 16, 8, seed=0).to(torch.device(device))
    model = SmallConvNet().to(device)
    masks = MaskSet.from_model(model)
    pruner = FGGP(masks, target_density=0.3, total_iterations=STEPS + 2, interval=2)
    state = TrainState(model, masks, pruner, OptimSpec(), seed=0)
    state.begin(data, 16)
    if compile_backend is not None:
        state.compile(mode, backend=compile_backend)
    losses, masks_seen = [], []
    for images, labels in train_batches(data, 16, state.data_generator):
        losses.append(train_step(state, images, labels, bf16=False)[0].item() / 16)
        masks_seen.append(masks.flat_mask().cpu())
    return losses, masks_seen, state


def test_compiled_steps_train_like_eager_ones_through_pruning_events():
    eager_losses, eager_masks, _ = training("cpu", None)
    losses, masks, state = training("cpu", "aot_eager")
    assert losses == pytest.approx(eager_losses, rel=1e-5, abs=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(masks, eager_masks))
    assert state.masks.active_count < state.masks.numel  # pruning happened


def test_mask_updates_never_recompile_the_step():
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    torch.manual_seed(0)
    data = make_synthetic(16 * 12, 8, seed=0)
    model = SmallConvNet()
    masks = MaskSet.from_model(model)
    pruner = FGGP(masks, target_density=0.3, total_iterations=14, interval=2)
    state = TrainState(model, masks, pruner, OptimSpec(), seed=0)
    state.begin(data, 16)
    state.compile("default", backend=counting_backend)
    batches = list(train_batches(data, 16, state.data_generator))
    for images, labels in batches[:3]:  # warm-up, including the first pruning event at t=2
        train_step(state, images, labels, bf16=False)
    compiled = len(graphs)
    active = []
    for images, labels in batches[3:]:
        train_step(state, images, labels, bf16=False)
        active.append(masks.active_count)
    assert len(set(active)) > 2  # several pruning events after the warm-up
    assert len(graphs) == compiled


def test_concurrent_jobs_get_distinct_gpus_and_share_evenly(tmp_path):
    leases = [take_slot(2, tmp_path) for _ in range(5)]
    assert [lease.gpu for lease in leases] == [0, 1, 0, 1, 0]
    leases[1].release()  # a job on GPU 1 ends: the next job goes there
    assert take_slot(2, tmp_path).gpu == 1
    four = [take_slot(4, tmp_path / "four") for _ in range(4)]
    assert sorted(lease.gpu for lease in four) == [0, 1, 2, 3]


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


@cuda
def test_compiled_cuda_steps_train_like_eager_ones():
    eager_losses, eager_masks, _ = training("cuda", None)
    losses, masks, _ = training("cuda", "inductor", mode="reduce-overhead")
    assert losses == pytest.approx(eager_losses, rel=1e-3, abs=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(masks[:3], eager_masks[:3]))


@cuda
def test_steady_state_cuda_step_never_syncs_with_the_host():
    _, _, state = training("cuda", None)
    data = make_synthetic(64, 8, seed=1).to(torch.device("cuda"))
    images, labels = next(train_batches(data, 16, state.data_generator))
    state.iteration = 10**6  # far from any pruning event
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_step(state, images, labels, bf16=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_a_compile_failure_after_a_graph_break_never_runs_a_step_twice():
    """The second graph of a step fails to compile after the first one has run: retrying the
    whole step eagerly would apply its first half (an optimizer step) twice."""
    from fggp_repro.compiling import eager_where_compiling_fails

    graphs = []

    def fails_on_the_second_graph(gm, example_inputs):
        graphs.append(gm)
        if len(graphs) == 2:
            raise RuntimeError("this backend cannot compile the second graph")
        return gm.forward

    def step(first, second):
        first.add_(1)  # stands for the optimizer step
        torch._dynamo.graph_break()
        second.add_(1)  # stands for masking

    first, second = torch.zeros(1), torch.zeros(1)
    compiled = torch.compile(step, backend=fails_on_the_second_graph)
    eager_where_compiling_fails(compiled)(first, second)
    assert len(graphs) == 2 and (first.item(), second.item()) == (1.0, 1.0)
