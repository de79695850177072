"""torch.compile for the two halves of a training step, with a first call that cannot run any
part of a step twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fggp_repro.spec import CompileMode


def compile_mode_for(mode: CompileMode, device: torch.device) -> CompileMode:
    """`auto`: CUDA graphs on a GPU, eager elsewhere (compiling costs more than it saves on a
    CPU-sized run)."""
    if mode is CompileMode.auto:
        return CompileMode.reduce_overhead if device.type == "cuda" else CompileMode.none
    return mode


def compiled(function: Callable[..., Any], mode: str, backend: str = "inductor") -> Callable:
    """`function` under torch.compile (`mode` "reduce-overhead" adds CUDA graphs), run eagerly
    where it fails to compile."""
    options = {} if mode == "default" else {"mode": mode}
    return eager_where_compiling_fails(torch.compile(function, backend=backend, **options))


def eager_where_compiling_fails(compiled: Callable[..., Any]) -> Callable[..., Any]:
    """`compiled`, whose first call (when torch.compile compiles) runs with dynamo's
    suppress_errors: a frame that fails to compile then runs eagerly *instead*, before any of
    it ran, and frames after a graph break compile (or fall back) on their own. So no part of
    a step runs twice, as it would if a failed compiled step were retried eagerly: the
    optimizer would step twice. Failures after the first call are not hidden."""
    first_call = True

    def call(*args: Any) -> Any:
        nonlocal first_call
        if not first_call:
            return compiled(*args)
        import torch._dynamo

        with torch._dynamo.config.patch(suppress_errors=True):
            result = compiled(*args)
        first_call = False
        return result

    return call
