"""How one training step runs: eagerly, compiled by torch.compile, or replayed from one captured
CUDA graph of the whole step.

Every path computes the same step (train_step is its definition). A fast path serves the
*ordinary* steps only: a full batch at an iteration where the pruner does nothing. A pruning
event, a partial last batch and the first few steps run as eager steps on the same tensors, so
nothing that changes shapes or Python state is ever compiled or captured, and masks, which
change in place, never need a new graph.

The captured graph is PyTorch's documented whole-network capture: forward, backward, the SGD
step and the masking, recorded once after eager warm-up steps on a side stream, with the batch
copied into static input tensors. SGD's momentum buffers exist before any capture
(training.state.make_optimizer), so none is born in the graph's memory pool; the learning rate is
a Python number baked into the graph, so a new LR (a milestone) is a new capture, as is the
first sparse mask of a dense start (a dense step does no mask work). A fast path that fails in
any way raises FastPathFailed; the trainer then restores the last intact state and goes on
eagerly (trainer.run), so no step is ever applied twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

from fggp_repro.foundations.errors import first_line
from fggp_repro.foundations.spec import CompileMode

if TYPE_CHECKING:
    from fggp_repro.training.state import TrainState

#: eager steps before the first capture: lazy initialisation (cuBLAS handles, cuDNN's
#: benchmark) must happen outside a capture
WARMUP_STEPS = 3


class FastPathFailed(Exception):
    """A compiled or captured step failed: compiling, capturing or replaying, at any step."""

    def __init__(self, path: str, iteration: int, error: BaseException):
        super().__init__(f"{path} failed at iteration {iteration}: {type(error).__name__}: "
                         f"{first_line(error)}")  # fmt: skip
        self.path, self.iteration, self.error = path, iteration, error


def step_sums(loss: Tensor, correct: Tensor, batch: int) -> Tensor:
    """The minibatch's summed loss and correct count, as one device tensor of two."""
    return torch.stack([loss.detach().float() * batch, correct.float()])


def train_step(state: TrainState, images: Tensor, labels: Tensor, bf16: bool) -> Tensor:
    """One eager iteration: forward, backward, the pruner's hooks around the optimizer step,
    masking. Returns the minibatch's summed loss and correct count (step_sums)."""
    t = state.iteration
    loss, correct = state.forward_loss(images, labels, bf16)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.pruner.after_backward(t)
    state.update()
    state.pruner.after_step(t)
    state.iteration += 1
    if state.pruner.acts_at(t):  # listeners may sync with the device: at pruning events only
        state.mask_changed(t + 1)
    return step_sums(loss, correct, labels.shape[0])


def resolve_mode(mode: CompileMode, device: torch.device) -> CompileMode:
    """`auto`: the captured whole step on a GPU, eager elsewhere (compiling costs more than it
    saves on a CPU-sized run)."""
    if mode is CompileMode.auto:
        return CompileMode.cuda_graph if device.type == "cuda" else CompileMode.none
    return mode


class StepPath:
    """Eager PyTorch, every step as written: the reference the fast paths are tested against,
    and where they fall back to."""

    name = "eager"
    #: a fast path: its failure is survived by going back to the last intact state
    can_fail = False

    def __init__(self, state: TrainState, batch_size: int, bf16: bool):
        self.state, self.batch_size, self.bf16 = state, batch_size, bf16

    def step(self, images: Tensor, labels: Tensor) -> Tensor:
        self.state.step_report.count("eager")
        return train_step(self.state, images, labels, self.bf16)

    def is_ordinary(self, images: Tensor) -> bool:
        """A full batch at an iteration where the pruner's hooks do nothing (Pruner.acts_at)."""
        return images.shape[0] == self.batch_size and not self.state.pruner.acts_at(
            self.state.iteration
        )


def graphs_compiled() -> int:
    """Graphs torch.compile has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class Compiled(StepPath):
    """torch.compile without CUDA graphs (inductor's `default` or `max-autotune-no-cudagraphs`):
    the forward with its loss, and the optimizer update (with masking, or without it while the
    network is dense), compiled separately, with the backward between them. Hitting dynamo's
    recompile limit is a failure here, not a silent eager frame."""

    can_fail = True

    def __init__(
        self, state: TrainState, batch_size: int, bf16: bool, mode: CompileMode,
        backend: Any = "inductor",
    ):  # fmt: skip
        super().__init__(state, batch_size, bf16)
        self.name = mode.value
        options = {"mode": "max-autotune-no-cudagraphs"} if mode is CompileMode.max_autotune else {}
        if backend != "inductor":
            options = {}

        def masked_update() -> None:
            state.optimizer.step()
            state.masks.apply_(state.optimizer, skip_when_dense=False)

        self.forward_loss = torch.compile(state.forward_loss, backend=backend, **options)
        self.dense_update = torch.compile(state.optimizer.step, backend=backend, **options)
        self.masked_update = torch.compile(masked_update, backend=backend, **options)

    def step(self, images: Tensor, labels: Tensor) -> Tensor:
        state = self.state
        if not self.is_ordinary(images):
            return super().step(images, labels)
        report = state.step_report
        before, started = graphs_compiled(), time.perf_counter()
        try:
            with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
                loss, correct = self.forward_loss(images, labels, self.bf16)
                state.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if state.masks.active_count < state.masks.numel:
                    self.masked_update()
                else:
                    self.dense_update()
        except Exception as error:
            raise FastPathFailed(self.name, state.iteration, error) from error
        compiled = graphs_compiled() - before
        if compiled:
            report.compilations += compiled
            report.setup_seconds += time.perf_counter() - started
        state.iteration += 1
        report.count(self.name)
        return step_sums(loss, correct, labels.shape[0])


class GraphBackend(Protocol):
    """Runs warm-up steps and captures a step into a graph that `replay()` runs again on the
    same tensors. On a GPU this is CudaGraphs; a test stands in for it on the CPU."""

    def warm(self, step: Callable[[], Tensor]) -> Tensor: ...

    def capture(self, step: Callable[[], Tensor]) -> tuple[Any, Tensor]: ...


class CudaGraphs:
    """torch.cuda.graph on one side stream, used for the warm-up steps and every capture, each
    capture into a memory pool of its own."""

    def __init__(self) -> None:
        self.stream = torch.cuda.Stream()

    def warm(self, step: Callable[[], Tensor]) -> Tensor:
        self.stream.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(self.stream):
                return step()
        finally:  # what follows, a rollback included, waits for what the step queued
            torch.cuda.current_stream().wait_stream(self.stream)

    def capture(self, step: Callable[[], Tensor]) -> tuple[Any, Tensor]:
        graph, pool = torch.cuda.CUDAGraph(), torch.cuda.graph_pool_handle()
        before = torch.cuda.current_stream()
        torch.cuda.synchronize()
        try:
            with torch.cuda.graph(graph, pool=pool, stream=self.stream):
                outputs = step()
        except BaseException:
            if torch.cuda.current_stream() != before:  # capture_end itself failed
                end_failed_capture(before, pool)
            raise
        torch.cuda.synchronize()
        return graph, outputs


def end_failed_capture(stream: torch.cuda.Stream, pool: Any) -> None:
    """What torch.cuda.graph leaves undone when ending a capture fails (an illegal call in the
    step invalidates it): the stream it switched from, and the allocator's routing into the
    graph's pool, without which later captures and empty_cache() fail. Best effort: the eager
    steps that follow need neither."""
    torch.cuda.set_stream(stream)
    try:
        device = torch.cuda.current_device()
        torch._C._cuda_endAllocateToPool(device, pool)
        torch._C._cuda_releasePool(device, pool)
    except (AttributeError, RuntimeError):
        pass


class CapturedGraph(StepPath):
    """The whole ordinary step as one CUDA graph: forward, backward, SGD step and, once the
    network is sparse, the masking. Captured again only when what it baked in changes: an
    optimizer hyperparameter (the LR at a milestone) or dense -> masked."""

    name = "cuda_graph"
    can_fail = True

    def __init__(
        self, state: TrainState, batch_size: int, bf16: bool, graphs: GraphBackend | None = None
    ):
        super().__init__(state, batch_size, bf16)
        self.graphs = graphs if graphs is not None else CudaGraphs()
        self.warm_steps = 0
        self.graph: Any = None
        self.baked: tuple | None = None
        self.images: Tensor | None = None
        self.labels: Tensor | None = None
        self.sums: Tensor | None = None

    def step(self, images: Tensor, labels: Tensor) -> Tensor:
        state = self.state
        if not self.is_ordinary(images):
            return super().step(images, labels)
        try:
            if self.warm_steps < WARMUP_STEPS:
                self.warm_steps += 1
                state.step_report.count("eager")
                return self.graphs.warm(lambda: train_step(state, images, labels, self.bf16))
            baked = self.baked_in()
            if baked != self.baked:
                self.capture(images, labels, baked)
            assert self.images is not None and self.labels is not None and self.sums is not None
            self.images.copy_(images)
            self.labels.copy_(labels)
            self.graph.replay()
        except Exception as error:
            self.release()
            raise FastPathFailed(self.name, state.iteration, error) from error
        state.iteration += 1
        state.step_report.count(self.name)
        return self.sums.clone()

    def release(self) -> None:
        """Let go of the graph, its memory and the static inputs (after a failure)."""
        self.graph = self.sums = self.images = self.labels = None
        self.baked = None

    def baked_in(self) -> tuple:
        """What a capture fixes beyond tensor addresses: the optimizer's hyperparameters (the LR
        among them) and whether the step masks."""
        groups = tuple(
            tuple((k, v) for k, v in sorted(group.items()) if isinstance(v, bool | int | float))
            for group in self.state.optimizer.param_groups
        )
        masks = self.state.masks
        return groups, masks.active_count < masks.numel

    def capture(self, images: Tensor, labels: Tensor, baked: tuple) -> None:
        state, masked = self.state, baked[-1]
        started = time.perf_counter()
        self.graph = self.sums = None  # the old graph's memory goes before the new one's
        if self.images is None or self.labels is None:
            self.images, self.labels = images.clone(), labels.clone()
        static_images, static_labels = self.images, self.labels
        batch = labels.shape[0]

        def whole_step() -> Tensor:
            loss, correct = state.forward_loss(static_images, static_labels, self.bf16)
            loss.backward()
            state.optimizer.step()
            if masked:
                state.masks.apply_(state.optimizer, skip_when_dense=False)
            return step_sums(loss, correct, batch)

        state.optimizer.zero_grad(set_to_none=True)  # the graph's gradients are its own
        self.graph, self.sums = self.graphs.capture(whole_step)
        self.baked = baked
        state.step_report.captures += 1
        state.step_report.setup_seconds += time.perf_counter() - started


def step_path_for(
    mode: CompileMode, state: TrainState, batch_size: int, bf16: bool, device: torch.device
) -> StepPath:
    """The step path `train.compile` asks for on this device (see resolve_mode)."""
    mode = resolve_mode(mode, device)
    if mode is CompileMode.none:
        return StepPath(state, batch_size, bf16)
    if mode is CompileMode.cuda_graph:
        if device.type != "cuda":
            raise ValueError(f"train.compile=cuda_graph needs a CUDA device, not {device}")
        return CapturedGraph(state, batch_size, bf16)
    return Compiled(state, batch_size, bf16, mode)
