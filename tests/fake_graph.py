"""A CPU stand-in for torch.cuda.graph with the same replay contract, for tests of the captured
step (fggp_repro.training.steps.CapturedGraph) on machines without a GPU.

Capture records every ATen operation the step launches, with the very tensors it launched them
on, and then puts every tensor that existed before it back as it was: like a CUDA capture, it
changes no value. `replay()` runs the recorded operations again on the same
tensors, writing each result into the tensor the capture made for it (a fixed address). So, as
on a GPU, whatever Python decided during the capture is frozen (a learning rate, a branch), a
tensor made inside the capture is the graph's own (an optimizer state born there is never seen
again), and a host sync inside the capture is an error.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

SYNC = torch.ops.aten._local_scalar_dense.default


def _written(func, args, kwargs) -> list[torch.Tensor]:
    """The tensors an operation writes to in place (its schema's `Tensor(a!)` arguments)."""
    values = list(args) + [kwargs.get(a.name) for a in func._schema.arguments[len(args) :]]
    written = []
    for argument, value in zip(func._schema.arguments, values):
        if argument.alias_info is not None and argument.alias_info.is_write:
            written += [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]
    return written


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.operations = []
        self.made: dict[int, torch.Tensor] = {}  # made during the capture (kept alive)
        self.before: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # value before capture

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is SYNC:
            raise RuntimeError("operation not permitted when stream is capturing")
        written = _written(func, args, kwargs)
        # every tensor from before the capture is kept as it was: some schemas do not declare
        # what they write (native_batch_norm updates its running statistics)
        for tensor in tree_flatten((args, kwargs))[0]:
            if not isinstance(tensor, torch.Tensor) or id(tensor) in self.made:
                continue
            if id(tensor) not in self.before:
                self.before[id(tensor)] = (tensor, tensor.detach().clone())
        out = func(*args, **kwargs)
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self.made[id(tensor)] = tensor
        aliases = any(r.alias_info is not None for r in func._schema.returns)
        self.operations.append((func, args, kwargs, out, aliases, bool(written)))
        return out


class RecordedGraph:
    def __init__(self, operations):
        self.operations = operations
        self.replays = 0

    @torch.no_grad()
    def replay(self) -> None:
        self.replays += 1
        for func, args, kwargs, out, aliases, writes in self.operations:
            if aliases and not writes:
                continue  # a view: the one made at capture still shows the same memory
            result = func(*args, **kwargs)
            if aliases:
                continue  # in place: written where it was at capture
            for fixed, new in zip(tree_flatten(out)[0], tree_flatten(result)[0]):
                if isinstance(fixed, torch.Tensor):
                    fixed.copy_(new)


class RecordingGraphs:
    """The GraphBackend of steps.CapturedGraph, on the CPU. `fail_on_replay=n` makes the n-th
    replay raise after it ran (a failure once the step's side effects happened)."""

    def __init__(self, fail_on_replay: int | None = None):
        self.graphs: list[RecordedGraph] = []
        self.warm_steps = 0
        self.fail_on_replay = fail_on_replay
        self.total_replays = 0

    def warm(self, step: Callable[[], torch.Tensor]) -> torch.Tensor:
        self.warm_steps += 1
        return step()

    def capture(self, step: Callable[[], torch.Tensor]):
        recorder = _Recorder()
        with recorder:
            outputs = step()
        with torch.no_grad():
            for tensor, value in recorder.before.values():
                tensor.copy_(value)
        graph = RecordedGraph(recorder.operations)
        self.graphs.append(graph)
        backend = self

        class Replayed:
            def replay(self) -> None:
                graph.replay()
                backend.total_replays += 1
                if backend.total_replays == backend.fail_on_replay:
                    raise RuntimeError("accessing tensor output of CUDAGraphs that has been "
                                       "overwritten by a subsequent run")  # fmt: skip

        return Replayed(), outputs
