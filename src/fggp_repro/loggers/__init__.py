"""Run loggers: where a training run reports its metrics besides metrics.jsonl and result.json.

One module per tracker (TensorBoard, Weights & Biases, MLflow), each a `RunLogger` with its
options, named by the `_target_` of a YAML file in conf/logger/. The modules import their
library only when a run starts, so a config naming one is checked without it installed, and
`unavailable(options)` says which extra to install before any training starts.
"""

from fggp_repro.loggers.base import NoLogger, RunInfo, RunLogger

__all__ = ["NoLogger", "RunInfo", "RunLogger"]
