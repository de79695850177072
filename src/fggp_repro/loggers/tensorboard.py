"""TensorBoard: event files written by torch.utils.tensorboard's SummaryWriter.

Each run writes into its own directory, `<run dir>/tensorboard` (or `<dir>/<group>/<run name>`
when `dir` is set), so `tensorboard --logdir <output_root>` shows a sweep's runs side by side.
Under `dir`, a run of the same name from another output_root of the same name (which would
share the directory) gets `<run name>-<hash of its run dir>` instead: a file in each directory
names the run directory it belongs to, so one run never deletes another's events.
Scalars: the epoch rows by their own names (train_loss, test_acc, lr, ...), pruning events as
`pruning/sparsity` and `layer_density/<parameter>`, and the final figures as `summary/<name>`;
the flattened config goes to the HParams dashboard (with the final figures as its metrics) and,
as a table, to the Text dashboard.

A resumed run appends to the same directory. Its new writer starts at the first step it logs,
with TensorBoard's purge marker there, so the steps between the checkpoint and the crash that
are logged again replace the ones logged before. A fresh start (a rerun of the config, or a
restart before the first checkpoint) first deletes the event files an earlier attempt left in
the directory, as the run's metrics.jsonl and result.json are replaced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fggp_repro.foundations.options import bounded
from fggp_repro.foundations.spec import flatten_config
from fggp_repro.loggers.base import (
    HEADLINE,
    RunInfo,
    RunLogger,
    as_text,
    finite,
    missing_library,
    numbers,
    pruning_metrics,
)


@dataclass(frozen=True)
class TensorBoardOptions:
    dir: str | None = None  # None: <run dir>/tensorboard; else <dir>/<group>/<run name>
    flush_secs: int = bounded(30, "[1, inf)")


class TensorBoardLogger(RunLogger):
    options = TensorBoardOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.log_dir: Path | None = None
        self._writer: Any = None
        self._purge_at_first_step = False
        self._last_step = 0

    @classmethod
    def unavailable(cls, options: Any) -> str | None:
        return missing_library("tensorboard", "tensorboard", "tensorboard")

    def start(self, run: RunInfo) -> None:
        if self.opts.dir is None:
            self.log_dir = run.run_dir / "tensorboard"
        else:
            self.log_dir = _own_directory(Path(self.opts.dir) / run.group / run.name, run.run_dir)
        earlier = list(self.log_dir.glob("events.out.tfevents.*"))
        if run.resumed and earlier:  # the writer opens at the first step logged, purging there
            self._purge_at_first_step = True
            return
        for events in earlier:
            events.unlink()
        writer = self._open(purge_step=None)
        hparams = {key: _hparam(value) for key, value in flatten_config(run.config).items()}
        hparams["run_id"] = run.run_id
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        experiment, session_start, _ = hparams_summary(
            hparams, {f"summary/{key}": 0.0 for key in HEADLINE}
        )
        writer.file_writer.add_summary(experiment, 0)
        writer.file_writer.add_summary(session_start, 0)
        header = f"run `{run.name}` (id {run.run_id}, group {run.group})\n\n"
        table = "| setting | value |\n|---|---|\n" + "".join(
            f"| {key} | {as_text(value)} |\n" for key, value in flatten_config(run.config).items()
        )
        writer.add_text("config", header + table, 0)
        writer.flush()

    def log_epoch(self, step: int, row: Mapping[str, float]) -> None:
        writer = self._at(step)
        for key, value in numbers(row).items():
            writer.add_scalar(key, value, step)

    def log_pruning(self, step: int, sparsity: float, layer_density: Mapping[str, float]) -> None:
        writer = self._at(step)
        for key, value in pruning_metrics(sparsity, layer_density).items():
            writer.add_scalar(key, value, step)

    def finish(self, summary: Mapping[str, float | None], status: str) -> None:
        if self.log_dir is None:
            return
        if self._writer is None:  # nothing logged since a resume: nothing to purge
            self._purge_at_first_step = False
        writer = self._at(self._last_step)
        for key, value in finite(summary).items():
            writer.add_scalar(f"summary/{key}", value, self._last_step)
        writer.add_text("status", status, self._last_step)
        if status != "preempted":  # a preempted session goes on when the run resumes
            writer.file_writer.add_summary(_session_end(status), self._last_step)
        writer.close()
        self._writer = None

    def _at(self, step: int) -> Any:
        """The writer, opened at `step` on a resume; remembers the last step for `finish`."""
        if self._writer is None:
            if self.log_dir is None:
                raise RuntimeError("TensorBoardLogger.start() was not called")
            purge = step if self._purge_at_first_step else None
            self._purge_at_first_step = False
            self._open(purge_step=purge)
        self._last_step = max(self._last_step, step)
        return self._writer

    def _open(self, purge_step: int | None) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        assert self.log_dir is not None
        self._writer = SummaryWriter(
            str(self.log_dir), purge_step=purge_step, flush_secs=self.opts.flush_secs
        )
        return self._writer


OWNER_FILE = "run_dir.txt"


def _own_directory(shared: Path, run_dir: Path) -> Path:
    """`shared` if no other run directory has claimed it (the claim is an exclusive create, so
    two runs starting together cannot both win), else one of this run's own beside it."""
    owner = str(run_dir.resolve())
    digest = hashlib.sha256(owner.encode()).hexdigest()[:6]
    for candidate in (shared, shared.with_name(f"{shared.name}-{digest}")):
        candidate.mkdir(parents=True, exist_ok=True)
        try:
            with (candidate / OWNER_FILE).open("x") as marker:
                marker.write(owner)
            return candidate
        except FileExistsError:
            if (candidate / OWNER_FILE).read_text() == owner:
                return candidate
    return candidate  # this run's own name, claimed by another: a hash collision


def _hparam(value: Any) -> Any:
    """A config leaf as the HParams plugin takes it: a number, bool or string."""
    if isinstance(value, bool | int | float | str):
        return value
    return as_text(value)


def _session_end(status: str) -> Any:
    """The HParams plugin's end-of-session record: success or failure."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    code = api_pb2.STATUS_SUCCESS if status == "completed" else api_pb2.STATUS_FAILURE
    content = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=code),
        version=metadata.PLUGIN_DATA_VERSION,
    )
    plugin = SummaryMetadata.PluginData(
        plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString()
    )
    value = Summary.Value(
        tag=metadata.SESSION_END_INFO_TAG, metadata=SummaryMetadata(plugin_data=plugin)
    )
    return Summary(value=[value])
