"""Run loggers: each one driven through a short run (two epochs, one evaluated, one pruning event,
the end), then read back with its own library's reader and compared with what was logged; a
resume continues the same logged run; a missing library names its extra. Offline: no account,
no network. A library that is not installed skips only its own tests."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fggp_repro.cli.config import plugin_spec
from fggp_repro.foundations.options import check_options
from fggp_repro.loggers import NoLogger, RunInfo, RunLogger
from fggp_repro.loggers.mlflow import MlflowLogger, MlflowOptions
from fggp_repro.loggers.tensorboard import TensorBoardLogger
from fggp_repro.loggers.wandb import WandbLogger, WandbOptions

REPO = Path(__file__).resolve().parents[1]
LOGGERS = ("none", "tensorboard", "wandb", "mlflow")
CONFIG = {
    "backbone": {"name": "vgg_tiny", "_target_": "fggp_repro.models.vgg.build"},
    "optim": {"lr": 0.1, "milestones": [80, 120]},
    "data": {"root": None},
    "seed": 1,
}
ROWS = [  # (step, row): the second epoch is evaluated
    (10, {"epoch": 1, "iteration": 10, "lr": 0.1, "train_loss": 2.25, "train_acc": 20.5,
          "density": 0.75, "sparsity": 0.25, "epoch_seconds": 1.5}),
    (20, {"epoch": 2, "iteration": 20, "lr": 0.1, "train_loss": 1.75, "train_acc": 40.25,
          "density": 0.5, "sparsity": 0.5, "test_acc": 38.5, "epoch_seconds": 1.25}),
]  # fmt: skip
PRUNING = (15, 0.5, {"features.0.weight": 0.75, "classifier.weight": 0.25})
SUMMARY = {"final_test_acc": 38.5, "achieved_sparsity": 0.5, "inference_flops_fraction": 0.4,
           "training_flops_fraction": 0.6}  # fmt: skip
METRICS = ("train_loss", "train_acc", "lr", "sparsity", "test_acc")


def run_info(tmp_path: Path, resumed: bool = False) -> RunInfo:
    return RunInfo(
        run_id="8c6f79dcd8",
        name="vgg_tiny/fggp/s0.5/dense/seed1-8c6f79dcd8",
        group="demo_grid",
        run_dir=tmp_path / "run",
        config=CONFIG,
        resumed=resumed,
    )


def drive(logger: RunLogger, run: RunInfo) -> None:
    logger.start(run)
    logger.log_epoch(*ROWS[0])
    logger.log_pruning(*PRUNING)
    logger.log_epoch(*ROWS[1])
    logger.finish(SUMMARY, "completed")


def expected(key: str) -> list[tuple[int, float]]:
    """(step, value) of a row's metric, in the order logged."""
    return [(step, row[key]) for step, row in ROWS if key in row]


def resume(logger: RunLogger, run: RunInfo) -> None:
    """A resumed session: epoch 2 replayed with another loss (logged before the crash), then
    epoch 3, then the end."""
    logger.start(run)
    logger.log_epoch(20, {**ROWS[1][1], "train_loss": 9.0})
    logger.log_epoch(30, {**ROWS[1][1], "epoch": 3, "iteration": 30, "train_loss": 1.5})
    logger.finish(SUMMARY, "failed")


@pytest.mark.parametrize("name", LOGGERS)
def test_each_config_names_its_logger_and_types_its_options(name):
    node = OmegaConf.create(
        {"output_root": "results/demo", "logger": OmegaConf.load(REPO / f"conf/logger/{name}.yaml")}
    )
    plugin = plugin_spec("logger", node.logger)
    check_options(plugin.options, "logger")
    assert plugin.name == name
    assert issubclass(plugin.builder, RunLogger)
    assert isinstance(plugin.builder(plugin.options), RunLogger)


def test_mlflow_config_defaults_to_a_database_in_output_root_unless_the_environment_names_one(
    monkeypatch,
):
    node = OmegaConf.create(
        {"output_root": "results/demo", "logger": OmegaConf.load(REPO / "conf/logger/mlflow.yaml")}
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert plugin_spec("logger", node.logger).options.tracking_uri == (
        "sqlite:///results/demo/mlflow.db"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert plugin_spec("logger", node.logger).options.tracking_uri == "http://tracking:5000"


def test_logger_modules_import_no_tracking_library_torch_or_hydra():
    code = (
        "import sys, fggp_repro.loggers.tensorboard, fggp_repro.loggers.wandb, "
        "fggp_repro.loggers.mlflow; print([m for m in ('torch', 'tensorboard', 'wandb', "
        "'mlflow', 'hydra', 'omegaconf') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_none_logger_does_nothing(tmp_path):
    assert NoLogger.unavailable(NoLogger.options()) is None
    drive(NoLogger(NoLogger.options()), run_info(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("logger", "module", "extra"),
    [
        (TensorBoardLogger, "tensorboard", "tensorboard"),
        (WandbLogger, "wandb", "wandb"),
        (MlflowLogger, "mlflow", "mlflow"),
        (MlflowLogger, "sqlalchemy", "mlflow"),  # the SQLite store's
    ],
)
def test_a_missing_library_names_the_extra_to_install(monkeypatch, logger, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` fails, find_spec finds none
    message = logger.unavailable(logger.options())
    assert message is not None and f"pip install -e '.[{extra}]'" in message


def test_wandb_online_without_credentials_says_to_log_in_or_go_offline(monkeypatch, tmp_path):
    monkeypatch.setattr("fggp_repro.loggers.wandb.missing_library", lambda *args: None)
    for variable in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    message = WandbLogger.unavailable(WandbOptions())
    assert message is not None and "wandb login" in message and "WANDB_MODE=offline" in message
    assert WandbLogger.unavailable(WandbOptions(mode="offline")) is None
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert WandbLogger.unavailable(WandbOptions()) is None
    assert WandbLogger.unavailable(WandbOptions(mode="online")) is not None
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40)
    assert WandbLogger.unavailable(WandbOptions(mode="online")) is None
    monkeypatch.setenv("NETRC", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert WandbLogger.unavailable(WandbOptions(mode="online")) is None


# TensorBoard ------------------------------------------------------------------------------


def tensorboard_scalars(log_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], object]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    scalars = {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }
    return scalars, accumulator


def session_ends(log_dir: Path) -> list[str]:
    """The HParams end-of-session statuses in the event files, in order (the accumulator keeps
    only a tag's first metadata)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    statuses = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_end_info":
                    content = value.metadata.plugin_data.content
                    end = plugin_data_pb2.HParamsPluginData.FromString(content).session_end_info
                    statuses.append(api_pb2.Status.Name(end.status))
    return statuses


def test_tensorboard_logs_rows_pruning_and_summary_then_a_resume_appends(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    run = run_info(tmp_path)
    drive(TensorBoardLogger(), run)
    log_dir = run.run_dir / "tensorboard"
    scalars, accumulator = tensorboard_scalars(log_dir)
    for key in METRICS:
        assert scalars[key] == [(s, pytest.approx(v)) for s, v in expected(key)], key
    assert scalars["pruning/sparsity"] == [(15, 0.5)]
    assert scalars["layer_density/features.0.weight"] == [(15, 0.75)]
    assert scalars["layer_density/classifier.weight"] == [(15, 0.25)]
    assert scalars["summary/final_test_acc"] == [(20, 38.5)]
    assert scalars["summary/inference_flops_fraction"] == [(20, pytest.approx(0.4))]
    start = plugin_data_pb2.HParamsPluginData.FromString(
        accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    ).session_start_info
    assert start.hparams["optim.lr"].number_value == pytest.approx(0.1)
    assert start.hparams["optim.milestones"].string_value == "[80, 120]"
    assert start.hparams["backbone.name"].string_value == "vgg_tiny"
    assert start.hparams["run_id"].string_value == "8c6f79dcd8"

    resume(TensorBoardLogger(), run_info(tmp_path, resumed=True))
    assert [p.name for p in run.run_dir.iterdir()] == ["tensorboard"]
    scalars, accumulator = tensorboard_scalars(log_dir)
    # the replayed step 20 replaces the one logged before the crash; the hparams stay
    assert scalars["train_loss"] == [(10, 2.25), (20, 9.0), (30, 1.5)]
    assert scalars["pruning/sparsity"] == [(15, 0.5)]
    assert "_hparams_/session_start_info" in accumulator.PluginTagToContent("hparams")
    assert session_ends(log_dir) == ["STATUS_SUCCESS", "STATUS_FAILURE"]  # one per session

    drive(TensorBoardLogger(), run_info(tmp_path))  # a fresh start replaces the earlier attempt
    scalars, _ = tensorboard_scalars(log_dir)
    assert scalars["train_loss"] == [(10, 2.25), (20, 1.75)]
    assert session_ends(log_dir) == ["STATUS_SUCCESS"]

    preempted = TensorBoardLogger()  # stopped at a checkpoint: no end of session yet
    preempted.start(run_info(tmp_path))
    preempted.log_epoch(*ROWS[0])
    preempted.finish({}, "preempted")
    assert session_ends(log_dir) == []
    resumed = TensorBoardLogger()
    resumed.start(run_info(tmp_path, resumed=True))
    resumed.log_epoch(*ROWS[1])
    resumed.finish(SUMMARY, "completed")
    scalars, _ = tensorboard_scalars(log_dir)
    assert scalars["train_loss"] == [(10, 2.25), (20, 1.75)]
    assert session_ends(log_dir) == ["STATUS_SUCCESS"]


def test_tensorboard_dir_option_collects_runs_by_group_and_name(tmp_path):
    pytest.importorskip("tensorboard")
    shared = tmp_path / "tb"
    run = run_info(tmp_path, resumed=True)  # resumed, but never logged before: a new start
    drive(TensorBoardLogger(TensorBoardLogger.options(dir=str(shared))), run)
    scalars, accumulator = tensorboard_scalars(shared / run.group / run.name)
    assert scalars["test_acc"] == [(20, 38.5)]
    assert "_hparams_/session_start_info" in accumulator.PluginTagToContent("hparams")
    assert not run.run_dir.exists()
    # the same run name from an output_root of the same name elsewhere: logged beside, not over
    elsewhere = dataclasses.replace(run_info(tmp_path / "elsewhere"), resumed=False)
    drive(TensorBoardLogger(TensorBoardLogger.options(dir=str(shared))), elsewhere)
    assert tensorboard_scalars(shared / run.group / run.name)[0]["test_acc"] == [(20, 38.5)]
    [beside] = (shared / run.group / run.name).parent.glob(f"{Path(run.name).name}-*")
    assert tensorboard_scalars(beside)[0]["test_acc"] == [(20, 38.5)]


# Weights & Biases -------------------------------------------------------------------------


def wandb_records(path: Path) -> list:
    """The records of an offline run's .wandb file, decoded with W&B's own Record message.
    wandb (0.31) has no Python reader of its own: the file is a LevelDB-style log, a 7-byte
    header then 32 KiB blocks of chunks (crc32 4 bytes, length 2, type 1: FULL 1, FIRST 2,
    MIDDLE 3, LAST 4)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, position, block = [], b"", 7, 32768
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 0:
            break
        if kind in (1, 4):
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


def complete_records(path: Path, timeout: float = 30.0) -> list:
    """A session's records once its exit record is on disk: W&B's service process may still be
    writing the file for a moment after `finish()` has returned (seen under load)."""
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + timeout
    while True:
        try:
            records = wandb_records(path)
        except DecodeError:  # a record half written
            records = []
        kinds = {record.WhichOneof("record_type") for record in records}
        if "exit" in kinds or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def wandb_sessions(run_dir: Path, wandb_id: str) -> list[dict]:
    """What each offline session of a W&B run logged, oldest first: its run record, history by
    step, summary and exit code. (W&B names a session's directory by the second it started,
    with -1, -2, ... added when two start in the same second.)"""
    sessions = []
    for path in sorted(run_dir.glob(f"wandb/offline-run-*/run-{wandb_id}.wandb")):
        found: dict = {"history": {}, "summary": {}, "exit_code": None}
        for record in complete_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                found["run"] = record.run
            elif kind == "history":
                row = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
                found["history"].setdefault(row["_step"], {}).update(row)
            elif kind == "summary":
                for item in record.summary.update:
                    key = item.key or "/".join(item.nested_key)
                    found["summary"][key] = json.loads(item.value_json)
            elif kind == "exit":
                found["exit_code"] = record.exit.exit_code
        sessions.append(found)
    return sessions


@pytest.fixture
def wandb_offline(monkeypatch, tmp_path):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    for variable, value in {
        "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off",
        "WANDB_ERROR_REPORTING": "false", "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
    }.items():  # fmt: skip
        monkeypatch.setenv(variable, value)
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home" / variable.lower()))


def test_wandb_offline_run_holds_rows_pruning_summary_and_a_resume_continues_it(
    wandb_offline, tmp_path
):
    run = run_info(tmp_path)
    drive(WandbLogger(), run)
    wandb_id = (run.run_dir / "wandb_run_id").read_text().strip()
    assert wandb_id.startswith(run.run_id + "-")
    [logged] = wandb_sessions(run.run_dir, wandb_id)
    assert logged["run"].run_id == wandb_id
    assert (logged["run"].display_name, logged["run"].run_group) == (run.name, run.group)
    assert logged["run"].project == "fggp-repro"
    config = {item.key: json.loads(item.value_json) for item in logged["run"].config.update}
    assert config["optim"] == CONFIG["optim"] and config["run_id"] == run.run_id
    history = logged["history"]
    assert sorted(history) == [10, 15, 20]
    for key in METRICS:
        assert [(s, history[s][key]) for s in (10, 20) if key in history[s]] == expected(key)
    assert history[15]["pruning/sparsity"] == 0.5
    assert history[15]["layer_density/features_0_weight"] == 0.75
    assert history[15]["layer_density/classifier_weight"] == 0.25
    assert {k: logged["summary"][k] for k in SUMMARY} == SUMMARY
    assert logged["summary"]["status"] == "completed" and logged["exit_code"] == 0

    resume(WandbLogger(), run_info(tmp_path, resumed=True))
    assert (run.run_dir / "wandb_run_id").read_text().strip() == wandb_id  # the same W&B run
    first, second = wandb_sessions(run.run_dir, wandb_id)
    assert first == logged and second["run"].run_id == wandb_id
    # offline, each session holds what it logged (online, W&B drops steps it already has)
    assert {step: row["train_loss"] for step, row in second["history"].items()} == {
        20: 9.0,
        30: 1.5,
    }
    assert second["summary"]["status"] == "failed" and second["exit_code"] == 1


def test_wandb_fresh_start_of_the_same_config_opens_a_new_run(wandb_offline, tmp_path):
    run = run_info(tmp_path)
    first = WandbLogger()
    first.start(run)
    first.finish({}, "preempted")  # before its first checkpoint: the rerun starts afresh
    old = (run.run_dir / "wandb_run_id").read_text().strip()
    second = WandbLogger(WandbLogger.options(mode="offline", project="other"))
    second.start(run_info(tmp_path))
    second.log_epoch(*ROWS[0])
    second.finish(SUMMARY, "completed")
    new = (run.run_dir / "wandb_run_id").read_text().strip()
    assert new != old and new.startswith(run.run_id)
    [preempted] = wandb_sessions(run.run_dir, old)
    assert preempted["summary"]["status"] == "preempted" and preempted["exit_code"] == 1
    [path] = run.run_dir.glob(f"wandb/offline-run-*-{old}/*.wandb")
    kinds = [record.WhichOneof("record_type") for record in wandb_records(path)]
    assert "preempting" in kinds
    [session] = wandb_sessions(run.run_dir, new)
    assert session["run"].project == "other" and session["history"][10]["train_loss"] == 2.25


# MLflow -----------------------------------------------------------------------------------


@pytest.fixture
def mlflow_store(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("alembic")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for mlflow.search_runs, the reader
    return MlflowOptions(tracking_uri=uri)


def test_mlflow_run_holds_params_rows_pruning_summary_and_a_resume_continues_it(
    mlflow_store, tmp_path
):
    import mlflow
    from mlflow import MlflowClient

    run = run_info(tmp_path)
    drive(MlflowLogger(mlflow_store), run)
    runs = mlflow.search_runs(experiment_names=[run.group], output_format="list")
    [logged] = runs
    assert logged.info.run_id == (run.run_dir / "mlflow_run_id").read_text().strip()
    assert logged.info.run_name == run.name and logged.info.status == "FINISHED"
    assert logged.data.tags["status"] == "completed"
    assert logged.data.tags["fggp.run_id"] == run.run_id
    params = logged.data.params
    assert params["optim.lr"] == "0.1" and params["optim.milestones"] == "[80, 120]"
    assert params["backbone._target_"] == "fggp_repro.models.vgg.build"
    assert params["data.root"] == "null" and params["run_id"] == run.run_id
    client = MlflowClient()

    def history(key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in client.get_metric_history(logged.info.run_id, key)]

    for key in METRICS:
        assert history(key) == expected(key), key
    assert history("pruning/sparsity") == [(15, 0.5)]
    assert history("layer_density/features.0.weight") == [(15, 0.75)]
    assert history("layer_density/classifier.weight") == [(15, 0.25)]
    assert {key: logged.data.metrics[key] for key in SUMMARY} == SUMMARY

    resume(MlflowLogger(mlflow_store), run_info(tmp_path, resumed=True))
    [again] = mlflow.search_runs(experiment_names=[run.group], output_format="list")
    assert again.info.run_id == logged.info.run_id
    assert again.info.status == "FAILED" and again.data.tags["status"] == "failed"
    # the replayed step 20 was logged before the crash: kept once, as first logged
    assert history("train_loss") == [(10, 2.25), (20, 1.75), (30, 1.5)]

    preempted = MlflowLogger(mlflow_store)  # a fresh start: a new MLflow run
    preempted.start(run_info(tmp_path))
    preempted.log_epoch(*ROWS[0])
    preempted.finish({}, "preempted")
    newest = client.get_run((run.run_dir / "mlflow_run_id").read_text().strip())
    assert newest.info.run_id != logged.info.run_id
    assert newest.info.status == "KILLED" and newest.data.tags["status"] == "preempted"
    resumed = MlflowLogger(mlflow_store)
    resumed.start(run_info(tmp_path, resumed=True))
    assert client.get_run(newest.info.run_id).info.status == "RUNNING"
    resumed.log_epoch(*ROWS[1])
    resumed.finish(SUMMARY, "completed")
    runs = mlflow.search_runs(experiment_names=[run.group], output_format="list")
    assert len(runs) == 2
    assert client.get_run(newest.info.run_id).info.status == "FINISHED"
    assert [
        (m.step, m.value) for m in client.get_metric_history(newest.info.run_id, "train_loss")
    ] == expected("train_loss")


# A run through the trainer --------------------------------------------------------------


def logged_by(name: str, run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every metric a run's logger wrote, as (step, value) in step order, read back with the
    logger's own library."""
    if name == "tensorboard":
        return tensorboard_scalars(run_dir / "tensorboard")[0]
    if name == "wandb":
        [session] = wandb_sessions(run_dir, (run_dir / "wandb_run_id").read_text().strip())
        found: dict[str, list[tuple[int, float]]] = {}
        for step, row in sorted(session["history"].items()):
            for key, value in row.items():
                found.setdefault(key, []).append((step, value))
        for key, value in session["summary"].items():
            found.setdefault(f"summary/{key}", []).append((-1, value))
        return found
    from mlflow import MlflowClient

    client, run_id = MlflowClient(), (run_dir / "mlflow_run_id").read_text().strip()
    metrics = client.get_run(run_id).data.metrics
    return {
        key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)] for key in metrics
    }


@pytest.mark.parametrize("name", ["tensorboard", "wandb", "mlflow"])
def test_a_demo_run_logs_what_its_metrics_file_and_record_hold(name, tmp_path, request):
    from conftest import FAST, spec

    from fggp_repro.runs.experiment import run_experiment

    pytest.importorskip(name)
    if name != "tensorboard":
        request.getfixturevalue({"wandb": "wandb_offline", "mlflow": "mlflow_store"}[name])
    run_spec = spec(*FAST, "train.eval_every=1", f"logger={name}", f"output_root={tmp_path}")
    run_dir = tmp_path / "run"
    record = run_experiment(run_spec, run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = logged_by(name, run_dir)
    for key in METRICS:
        expected_rows = [(row["iteration"], pytest.approx(row[key])) for row in rows]
        assert [(s, v) for s, v in logged[key] if s >= 0] == expected_rows, key
    # the pruning events: the first at the initial mask, the last leaves the final sparsity
    events = logged["pruning/sparsity"]
    assert events[0][0] == 0 and events[-1][1] == pytest.approx(rows[-1]["sparsity"])
    last = sorted(v[-1][1] for k, v in logged.items() if k.startswith("layer_density/"))
    assert last == pytest.approx(sorted(layer["density"] for layer in record["per_layer"]))
    summary = logged.get("summary/final_test_acc") or logged["final_test_acc"]
    assert summary[-1][1] == pytest.approx(record["final_test_acc"])


class Unreachable(RunLogger):
    """A tracker whose server cannot be reached, or goes away at its second epoch."""

    def __init__(self, fails_at_start: bool):
        super().__init__()
        self.fails_at_start = fails_at_start
        self.calls: list[str] = []

    def start(self, run):
        if self.fails_at_start:
            raise ConnectionError("no tracking server")

    def log_epoch(self, step, row):
        self.calls.append("log_epoch")
        if len(self.calls) == 2:
            raise ConnectionError("the tracking server went away")

    def finish(self, summary, status):
        self.calls.append(f"finish {status}")


def test_a_failing_tracker_costs_a_warning_never_the_run(tmp_path, monkeypatch, caplog):
    from conftest import FAST, spec

    from fggp_repro.loggers.base import FailSafe
    from fggp_repro.runs import experiment
    from fggp_repro.training import steps

    warnings: list[str] = []
    unreachable = Unreachable(fails_at_start=True)
    safe = FailSafe(unreachable, warnings.append)
    safe.call("start", run_info(tmp_path))
    safe.call("log_epoch", *ROWS[0])
    safe.call("finish", SUMMARY, "completed")
    assert unreachable.calls == [] and len(warnings) == 1  # nothing after the first failure
    assert "Unreachable.start failed" in warnings[0] and "ConnectionError" in warnings[0]

    tracker = Unreachable(fails_at_start=False)
    monkeypatch.setattr(experiment, "FailSafe", lambda _, warn: FailSafe(tracker, warn))
    monkeypatch.setattr(experiment, "NoLogger", None)  # so that logger=none gets the tracker
    record = experiment.run_experiment(spec(*FAST, "train.epochs=3"), tmp_path / "run")
    assert record["status"] == "completed"
    assert tracker.calls == ["log_epoch", "log_epoch"]  # no third epoch, no finish
    assert "Unreachable.log_epoch failed" in caplog.text and "went away" in caplog.text

    def broken_step(*args):
        raise RuntimeError("a node went away")

    tracker = Unreachable(fails_at_start=False)  # training fails: the logged run is closed
    monkeypatch.setattr(steps, "train_step", broken_step)
    with pytest.raises(experiment.RunFailed):
        experiment.run_experiment(spec(*FAST, "seed=2"), tmp_path / "failed")
    assert tracker.calls == ["finish failed"]
