"""The fast paths compute the eager step, and never end a run.

On the CPU the captured whole step runs on a stand-in for torch.cuda.graph with the same replay
contract (fake_graph.py: Python frozen at capture, tensors made in the capture the graph's own,
no host sync), through a realistic short run: pruning events, a partial last batch, two LR
milestones, a resume. On a GPU (skipped without one) the same checks run on real CUDA graphs."""

import signal
from dataclasses import replace

import pytest
import torch
from conftest import REPO, SmallConvNet, spec
from fake_graph import RecordingGraphs

from fggp_repro.datasets.synthetic import make_synthetic
from fggp_repro.foundations.spec import CompileMode, OptimSpec, TrainSpec
from fggp_repro.pruners import FGGP, GraNet
from fggp_repro.sparsity.masks import MaskSet
from fggp_repro.training import steps
from fggp_repro.training.data import crop_flip, train_batches
from fggp_repro.training.devices import take_slot
from fggp_repro.training.state import TrainState, make_optimizer
from fggp_repro.training.steps import CapturedGraph, Compiled, StepPath
from fggp_repro.training.stopping import Preempted, StopRequest
from fggp_repro.training.trainer import run, set_determinism

BATCH = 16
#: 3 epochs of 7 steps (the 7th a partial batch of 8), LR milestones after epochs 1 and 2
TRAIN = TrainSpec(epochs=3, batch_size=BATCH, device="cpu", progress=False, eval_every=1)
OPTIM = OptimSpec(milestones=[1, 2])
N_TRAIN = 6 * BATCH + 8


def fresh_state(device="cpu", pruner=FGGP, **pruner_args):
    torch.manual_seed(0)
    data = make_synthetic(N_TRAIN, 32, seed=0).to(torch.device(device))
    model = SmallConvNet().to(device)
    masks = MaskSet.from_model(model)
    options = {"target_density": 0.3, "total_iterations": 21, "interval": 4, **pruner_args}
    state = TrainState(model, masks, pruner(masks, **options), OPTIM, seed=0)
    state.begin(data, BATCH)
    return state, data


def outcome(state):
    """Everything a run's result depends on: its history (timings aside), weights, momentum."""
    rows = [{k: v for k, v in row.items() if "seconds" not in k} for row in state.history]
    tensors = [p.detach().clone() for p in state.model.parameters()]
    tensors += [b.clone() for b in state.model.buffers()]
    tensors += [state.optimizer.state[p]["momentum_buffer"].clone()
                for p in state.model.parameters()]  # fmt: skip
    return rows, tensors


def same(a, b) -> bool:
    rows_a, tensors_a = a
    rows_b, tensors_b = b
    return rows_a == rows_b and all(torch.equal(x, y) for x, y in zip(tensors_a, tensors_b))


def eager_run(**pruner_args):
    state, data = fresh_state(**pruner_args)
    run(state, data, TRAIN)
    return outcome(state)


@pytest.fixture(scope="module")
def eager_fggp():
    return eager_run()


def watch_eager_steps(monkeypatch) -> list[int]:
    """The iterations that run as eager steps (steps.train_step), in order."""
    seen = []
    step = steps.train_step

    def eager(state, *args):
        seen.append(state.iteration)
        return step(state, *args)

    monkeypatch.setattr(steps, "train_step", eager)
    return seen


def kinds(state, eager_iterations: list[int]) -> dict[str, set[int]]:
    """Iterations by kind: pruning events, partial batches, the rest (ordinary)."""
    per_epoch = -(-N_TRAIN // BATCH)
    events = {t for t in range(state.iteration) if state.pruner.acts_at(t)}
    partial = {t for t in range(state.iteration) if t % per_epoch == per_epoch - 1}
    ordinary = sorted(set(range(state.iteration)) - events - partial)
    return {"events": events, "partial": partial, "ordinary": ordinary,
            "eager": set(eager_iterations)}  # fmt: skip


def test_the_captured_step_trains_bit_for_bit_like_the_eager_one(eager_fggp, monkeypatch):
    """Pruning events, partial batches and warm-up steps run eagerly; every other step is a
    replay; a new capture comes only at a new LR (two milestones) -- and the result is the
    eager run's, bit for bit. With SGD's momentum born inside the capture, or the LR left baked
    in after a milestone, the replays would drift from the eager run."""
    eager_iterations = watch_eager_steps(monkeypatch)
    state, data = fresh_state()
    graphs = RecordingGraphs()
    run(state, data, TRAIN, path=CapturedGraph(state, BATCH, False, graphs))
    assert same(outcome(state), eager_fggp)
    seen = kinds(state, eager_iterations)
    assert seen["events"] and seen["partial"] and len(seen["events"] - seen["partial"]) >= 3
    warm_up = set(seen["ordinary"][: steps.WARMUP_STEPS])
    assert seen["eager"] == seen["events"] | seen["partial"] | warm_up
    graph_steps = state.iteration - len(seen["eager"])
    assert state.step_report.steps == {"eager": len(seen["eager"]), "cuda_graph": graph_steps}
    assert len(graphs.graphs) == state.step_report.captures == 3  # LR 0.1, 0.01, 0.001
    assert state.step_report.fallbacks == []


def test_a_dense_step_does_no_mask_work_and_the_first_sparse_mask_is_a_new_capture():
    """GraNet acts after the optimizer step of t=4, 9, ...: after the warm-up steps 0-2 the
    first capture (t=3) is of a dense step, which masks nothing; the mask left at t=4 needs a
    capture that masks (t=5); then one per new LR."""
    args = {"interval": 5, "end_fraction": 0.5, "initial_rate": 0.3}
    expected = eager_run(pruner=GraNet, **args)
    state, data = fresh_state(pruner=GraNet, **args)
    graphs = RecordingGraphs()
    run(state, data, TRAIN, path=CapturedGraph(state, BATCH, False, graphs))
    assert same(outcome(state), expected)

    def masks_weights(graph) -> bool:  # SGD's own multiplies are by a scalar
        return any("_foreach_mul_.List" in str(op[0]) for op in graph.operations)

    assert [masks_weights(graph) for graph in graphs.graphs] == [False, True, True, True]
    assert state.step_report.captures == 4


def test_a_run_resumed_mid_epoch_captures_again_and_ends_like_the_eager_run(
    eager_fggp, monkeypatch
):
    state, data = fresh_state()
    stop = StopRequest()
    saved = {}

    def preempt_at_step_10(state_now, row=None):
        saved["state"] = state_now.snapshot()

    def step_and_stop(images, labels):
        out = graph_path_step(images, labels)
        if state.iteration == 10:
            stop.signum = signal.SIGUSR1
        return out

    path = CapturedGraph(state, BATCH, False, RecordingGraphs())
    graph_path_step = path.step
    path.step = step_and_stop
    with pytest.raises(Preempted):
        run(state, data, TRAIN, on_stop=preempt_at_step_10, stop=stop, path=path)

    eager_iterations = watch_eager_steps(monkeypatch)
    resumed, data = fresh_state()
    resumed.load_state_dict(saved["state"])
    assert resumed.epoch_progress is not None  # mid-epoch
    graphs = RecordingGraphs()
    run(resumed, data, TRAIN, path=CapturedGraph(resumed, BATCH, False, graphs))
    assert same(outcome(resumed), eager_fggp)
    ordinary_after = [t for t in kinds(resumed, [])["ordinary"] if t >= 10]
    assert set(ordinary_after[: steps.WARMUP_STEPS]) <= set(eager_iterations)
    assert graphs.graphs and graphs.warm_steps == steps.WARMUP_STEPS


def test_sgd_momentum_exists_before_the_first_step_and_changes_nothing():
    """Made as zeros before any step (so no capture makes it), bit-identical to SGD's own."""
    torch.manual_seed(0)
    model, lazy_model = SmallConvNet(), SmallConvNet()
    lazy_model.load_state_dict(model.state_dict())
    ours = make_optimizer(model, OptimSpec())
    assert all(ours.state[p]["momentum_buffer"].count_nonzero() == 0 for p in model.parameters())
    lazy = torch.optim.SGD(lazy_model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                           weight_decay=5e-4, foreach=True)  # fmt: skip
    for _ in range(3):
        images, labels = torch.randn(8, 3, 8, 8), torch.randint(10, (8,))
        for net, optimizer in ((model, ours), (lazy_model, lazy)):
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(images), labels).backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), lazy_model.parameters()))


def test_a_fast_path_failing_after_its_side_effects_leaves_the_eager_run(eager_fggp):
    """The 5th replay raises after it ran (the optimizer stepped): the epoch starts again from
    its intact state on the eager path, so no step is applied twice."""
    state, data = fresh_state()
    fallbacks = []
    path = CapturedGraph(state, BATCH, False, RecordingGraphs(fail_on_replay=5))
    run(state, data, TRAIN, path=path, on_fallback=fallbacks.append)
    assert same(outcome(state), eager_fggp)
    [failure] = fallbacks
    [recorded] = state.step_report.fallbacks
    assert "accessing tensor output of CUDAGraphs" in recorded["reason"]
    assert recorded["from"] == "cuda_graph" and recorded["to"] == "eager"
    assert recorded["at_iteration"] == failure.iteration > recorded["resumed_at_iteration"]
    assert "Traceback" in recorded["traceback"]
    assert state.step_report.used == ["cuda_graph", "eager"]


def test_compiled_steps_train_like_eager_ones_within_a_recompile_budget(eager_fggp, monkeypatch):
    """torch.compile (aot_eager, so no C++ build): the same run to 1e-5, pruning events and
    partial batches as eager steps, one graph per compiled function and one more per LR."""
    torch._dynamo.reset()
    eager_iterations = watch_eager_steps(monkeypatch)
    state, data = fresh_state()
    path = Compiled(state, BATCH, False, CompileMode.default, backend="aot_eager")
    run(state, data, TRAIN, path=path)
    rows, tensors = outcome(state)
    expected_rows, expected_tensors = eager_fggp
    for row, expected in zip(rows, expected_rows):
        assert row == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert all(
        torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(tensors, expected_tensors)
    )
    seen = kinds(state, eager_iterations)
    assert seen["eager"] == seen["events"] | seen["partial"]
    # the forward, the dense update (steps 1-3), the masked update at each of the three LRs
    assert state.step_report.compilations == 5
    assert state.step_report.fallbacks == []


def test_a_failure_of_the_eager_path_itself_is_not_a_fallback(monkeypatch):
    """Only a fast path is retried eagerly; a failing eager step ends the run with its error."""
    state, data = fresh_state()

    def broken(*args):
        raise RuntimeError("a bug in a pruner")

    monkeypatch.setattr(steps, "train_step", broken)
    with pytest.raises(RuntimeError, match="a bug in a pruner"):
        run(state, data, TRAIN, path=StepPath(state, BATCH, False))


def test_concurrent_jobs_get_distinct_gpus_and_share_evenly(tmp_path):
    leases = [take_slot(2, tmp_path) for _ in range(5)]
    assert [lease.gpu for lease in leases] == [0, 1, 0, 1, 0]
    leases[1].release()  # a job on GPU 1 ends: the next job goes there
    assert take_slot(2, tmp_path).gpu == 1
    four = [take_slot(4, tmp_path / "four") for _ in range(4)]
    assert sorted(lease.gpu for lease in four) == [0, 1, 2, 3]


def cuda(test):
    """A test that needs a GPU: skipped without one, marked for scripts/gpu_check.sh."""
    needs = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
    return pytest.mark.cuda(needs(test))


def cuda_run(path_for, deterministic: bool = True):
    set_determinism(deterministic)
    try:
        state, data = fresh_state("cuda")
        run(state, data, replace(TRAIN, device="cuda"), path=path_for(state))
    finally:
        set_determinism(False)
    return state


@cuda
def test_cuda_graph_steps_train_like_eager_ones():
    eager = cuda_run(lambda s: StepPath(s, BATCH, False))
    graph = cuda_run(lambda s: CapturedGraph(s, BATCH, False))
    (rows, tensors), (eager_rows, eager_tensors) = outcome(graph), outcome(eager)
    for row, expected in zip(rows, eager_rows):
        assert row == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(tensors, eager_tensors))
    assert graph.step_report.captures == 3 and graph.step_report.fallbacks == []
    assert graph.step_report.steps["cuda_graph"] > graph.step_report.steps["eager"]


@cuda
def test_bf16_cuda_graph_steps_run_and_learn():
    state = cuda_run(lambda s: CapturedGraph(s, BATCH, True), deterministic=False)
    assert state.step_report.fallbacks == [] and state.step_report.captures >= 1
    assert torch.isfinite(torch.tensor(state.history[-1]["train_loss"]))


@cuda
def test_a_failed_capture_leaves_a_process_that_trains_and_captures_again():
    """A host sync inside the capture invalidates it: the run goes on eagerly, and the process
    can still free memory and capture a graph (the stream and the allocator were restored)."""
    state, data = fresh_state("cuda")
    forward = state.forward_loss

    def syncing(images, labels, bf16):
        out = forward(images, labels, bf16)
        if torch.cuda.is_current_stream_capturing():
            out[0].item()  # not permitted while capturing
        return out

    state.forward_loss = syncing
    fallbacks = []
    run(state, data, replace(TRAIN, device="cuda"), path=CapturedGraph(state, BATCH, False),
        on_fallback=fallbacks.append)  # fmt: skip
    assert len(fallbacks) == 1 and state.step_report.used == ["cuda_graph", "eager"]
    torch.cuda.empty_cache()
    again = cuda_run(lambda s: CapturedGraph(s, BATCH, False))
    assert again.step_report.fallbacks == [] and again.step_report.captures == 3


@cuda
def test_a_steady_state_graph_step_never_syncs_with_the_host():
    state, data = fresh_state("cuda")
    path = CapturedGraph(state, BATCH, False)
    batches = list(train_batches(data, BATCH, state.data_generator, drop_last=True))
    state.iteration = 10**6  # far from any pruning event
    for images, labels in batches[: steps.WARMUP_STEPS + 1]:  # warm-up, then the capture
        path.step(images, labels)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for images, labels in batches[steps.WARMUP_STEPS + 1 :]:
            path.step(images, labels)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert state.step_report.steps["cuda_graph"] >= 1


@cuda
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_crop_and_flip_give_the_same_uint8_images_on_cpu_and_cuda(padding_mode):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    dy, dx = torch.randint(0, 9, (64,), generator=generator), torch.randint(0, 9, (64,))
    flip = torch.rand(64, generator=generator) < 0.5
    on_cpu = crop_flip(images, dy, dx, flip, 4, padding_mode)
    on_cuda = crop_flip(images.cuda(), dy.cuda(), dx.cuda(), flip.cuda(), 4, padding_mode)
    assert torch.equal(on_cpu, on_cuda.cpu())


@cuda
def test_a_checkpoint_keeps_the_random_state_of_the_run_s_own_gpu_only():
    state, _ = fresh_state("cuda")
    saved = state.state_dict()["cuda_rng"]
    assert isinstance(saved, torch.Tensor)
    assert torch.equal(saved, torch.cuda.get_rng_state(state.device))


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "conf/pruner").glob("*.yaml")))
def test_every_pruner_does_nothing_where_it_says_it_does_not_act(name):
    """The fast paths skip the hooks where acts_at(t) is False: they must change nothing
    there (mask, weights, the pruner's own state)."""
    from fggp_repro.pruners import build_pruner

    run_spec = spec(f"pruner={name}", "schedule.interval=5", "schedule.start_iteration=3")
    torch.manual_seed(0)
    model = SmallConvNet()
    masks = MaskSet.from_model(model)
    pruner = build_pruner(run_spec.pruner, masks, target_density=0.3, total_iterations=40,
                          initial_density=1.0, seed=0, schedule=run_spec.schedule)  # fmt: skip
    images, labels = torch.randn(8, 3, 8, 8), torch.randint(10, (8,))
    pruner.at_init(model, iter([(images, labels)] * 4))
    torch.nn.functional.cross_entropy(model(images), labels).backward()
    quiet = [t for t in range(40) if not pruner.acts_at(t)]
    assert quiet and len(quiet) < 40 or not pruner.traits.uses_schedule
    for t in quiet:
        before = ([m.clone() for m in masks.masks], [w.detach().clone() for w in masks.weights],
                  pruner.state_dict()["generator"].clone())  # fmt: skip
        pruner.after_backward(t)
        pruner.after_step(t)
        assert all(torch.equal(a, b) for a, b in zip(before[0], masks.masks)), (name, t)
        assert all(torch.equal(a, b) for a, b in zip(before[1], masks.weights)), (name, t)
        assert torch.equal(before[2], pruner.state_dict()["generator"]), (name, t)


def test_train_device_cuda_names_the_current_gpu_by_its_index(monkeypatch):
    """torch.cuda.set_device refuses a device without an index: `cuda` becomes cuda:<current>."""
    from fggp_repro.training.devices import choose_device

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert choose_device("cuda") == (torch.device("cuda", 1), None)
    assert choose_device("cuda:0")[0] == torch.device("cuda", 0)
