"""MLflow: one MLflow run per training run, in an experiment named after the sweep (`group`).

The tracking store is `tracking_uri` (the YAML's default: $MLFLOW_TRACKING_URI, else a SQLite
database `<output_root>/mlflow.db`; browse it with `mlflow ui --backend-store-uri sqlite:///...`).
The MLflow run id is kept in `<run dir>/mlflow_run_id`: a run resumed from its checkpoint
continues that MLflow run, skipping the steps it had already logged; a fresh start of the same
config opens a new MLflow run (and marks an earlier one left RUNNING by a crash as KILLED).

Params are the flattened config (`optim.lr`); metrics are the epoch rows by their own names,
`pruning/sparsity` and `layer_density/<parameter>` at pruning events, and the final figures;
the run ends FINISHED, FAILED or KILLED (preempted, to be resumed) with a `status` tag.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fggp_repro.foundations.spec import flatten_config
from fggp_repro.loggers.base import (
    RunInfo,
    RunLogger,
    as_text,
    finite,
    missing_library,
    numbers,
    pruning_metrics,
    read_id,
    sanitize,
    write_id,
)

ID_FILE = "mlflow_run_id"
NAME_CHARACTERS = r"A-Za-z0-9_\-. :/"  # what MLflow accepts in metric and param names
MAX_KEY = 250
MAX_VALUE = 500  # MLflow's smallest limit on a param value across versions
BATCH = 100  # params per log_batch call (MLflow's limit)


@dataclass(frozen=True)
class MlflowOptions:
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else MLflow's own default
    experiment: str | None = None  # None: the run's group


class MlflowLogger(RunLogger):
    options = MlflowOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.client: Any = None
        self.run_id: str | None = None
        self._logged_until = {"epoch": -1, "pruning": -1}  # steps a resumed run already has
        self._last_step = 0

    @classmethod
    def unavailable(cls, options: Any) -> str | None:
        uri = getattr(options, "tracking_uri", None) or ""
        needed = ["mlflow"]
        if not uri or uri.startswith("sqlite"):  # MLflow 3's default store is SQLite too
            needed += ["sqlalchemy", "alembic"]
        for module in needed:
            missing = missing_library(module, "mlflow", "mlflow")
            if missing is not None:
                return missing
        return None

    @classmethod
    def prepare(cls, options: Any, group: str) -> None:
        """The store and the experiment, made once: jobs that start together on a new SQLite
        store would each run its first migration, and all but one fail (seen with two)."""
        from mlflow import MlflowClient

        logger = cls(options)
        logger.client = MlflowClient(tracking_uri=logger.opts.tracking_uri)
        logger._experiment(group)

    def start(self, run: RunInfo) -> None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        self.client = client = MlflowClient(tracking_uri=self.opts.tracking_uri)
        id_file = run.run_dir / ID_FILE
        previous = read_id(id_file)
        old = None
        if previous is not None:
            try:
                old = client.get_run(previous)
            except MlflowException:  # another store, or deleted: start a new run
                old = None
        params = {
            _name(key)[:MAX_KEY]: as_text(value)[:MAX_VALUE]
            for key, value in {**flatten_config(run.config), "run_id": run.run_id}.items()
        }
        if run.resumed and old is not None:
            self.run_id = old.info.run_id
            client.update_run(self.run_id, status="RUNNING")
            for kind, key in (("epoch", "iteration"), ("pruning", "pruning/sparsity")):
                steps = [m.step for m in client.get_metric_history(self.run_id, key)]
                self._logged_until[kind] = max(steps, default=-1)
            self._last_step = max(self._logged_until.values())
            params = {k: v for k, v in params.items() if k not in old.data.params}
        else:
            if old is not None and old.info.status == "RUNNING":
                client.set_terminated(old.info.run_id, status="KILLED")
            tags = {"fggp.run_id": run.run_id, "fggp.group": run.group}
            tags["fggp.run_dir"] = str(run.run_dir)
            created = client.create_run(self._experiment(run.group), run_name=run.name, tags=tags)
            self.run_id = created.info.run_id
            write_id(id_file, self.run_id)
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in params.items()]
        for first in range(0, len(items), BATCH):
            client.log_batch(self.run_id, params=items[first : first + BATCH])

    def log_epoch(self, step: int, row: Mapping[str, float]) -> None:
        if step > self._logged_until["epoch"]:
            self._log(step, {_name(key): value for key, value in numbers(row).items()})

    def log_pruning(self, step: int, sparsity: float, layer_density: Mapping[str, float]) -> None:
        if step > self._logged_until["pruning"]:
            self._log(step, pruning_metrics(sparsity, layer_density, _name))

    def finish(self, summary: Mapping[str, float | None], status: str) -> None:
        if self.client is None or self.run_id is None:
            return
        self._log(self._last_step, {_name(key): value for key, value in finite(summary).items()})
        self.client.set_tag(self.run_id, "status", status)
        ended = {"completed": "FINISHED", "preempted": "KILLED"}.get(status, "FAILED")
        self.client.set_terminated(self.run_id, status=ended)
        self.client = None

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        if self.client is None or self.run_id is None:
            raise RuntimeError("MlflowLogger.start() was not called")
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._last_step = max(self._last_step, step)
        batch = [Metric(key, value, now, step) for key, value in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def _experiment(self, group: str) -> str:
        """The id of the experiment the run goes to, created (or restored) if need be; two
        runs of a sweep creating it at once both end up with it."""
        from mlflow.exceptions import MlflowException

        name = self.opts.experiment or group or "fggp-repro"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(name)
            except MlflowException:
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            self.client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id


def _name(key: str) -> str:
    return sanitize(key, NAME_CHARACTERS)
