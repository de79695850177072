"""Stopping a run cleanly: preemption and time-limit signals become a request that the training
loop honours after the current step, by checkpointing and raising Preempted."""

from __future__ import annotations

import signal
from typing import Any


class Preempted(Exception):
    """A stop signal arrived; the state was checkpointed at the end of the current step."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class StopRequest:
    """Turns SIGTERM, SIGUSR1, SIGUSR2 (cluster preemption and time limits) and a first Ctrl-C
    into a request the loop honours after the current step: checkpoint, then stop. The handlers
    they replace are kept, so a launcher's own handler (submitit's requeue) runs afterwards."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for signum in self.SIGNALS:
            try:
                self.previous[signum] = signal.signal(signum, self._request)
            except ValueError:  # not the main thread: no signal handling here
                break
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def _request(self, signum: int, frame: object) -> None:
        self.signum = signum
        if signum == signal.SIGINT:  # a second Ctrl-C interrupts at once
            signal.signal(signal.SIGINT, signal.default_int_handler)
