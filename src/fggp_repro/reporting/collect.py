"""Gather result.json records under a directory into one pandas table, and report on them.

`fggp-repro-table RESULTS_DIR` prints final test accuracy (mean +- std over seeds) and achieved
sparsity per dataset, backbone, initial state, target and pruner, each dataset in a section of
its own; `--plot FILE` also draws accuracy against sparsity, one panel per dataset, backbone and
initial state. Seeds are averaged only within one configuration (the record's setting_id): runs
of the same setting under other configurations, or records of older releases without an id, get
rows of their own and a warning. Dense training is the reference of the pruned runs it was
trained like (same data, backbone, optimiser and training length), never ranked; a dense run
that matches no pruned run is left out, with a warning. Unreadable files are named on stderr
and skipped; no record is ever changed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path

import pandas as pd

from fggp_repro.foundations.errors import ResultsError
from fggp_repro.foundations.spec import flatten_config
from fggp_repro.reporting.ranking import cells, cliques, ranking_table, ranks, significance
from fggp_repro.reporting.tables import (
    FORMATS,
    comparison,
    cost_data,
    cost_text,
    csv_text,
    marked,
    paper_table,
    paper_table_data,
    published_data,
    ranking_data,
    ranking_text,
)  # fmt: skip
from fggp_repro.runs.identity import place_keys
from fggp_repro.runs.records import METRICS_FILE, RESULT_FILE, missing_files, read_record

COLUMNS = [
    "setting_id",
    "dataset",
    "backbone",
    "pruner",
    "target_sparsity",
    "init",
    "seed",
    "status",
    "final_test_acc",
    "achieved_sparsity",
    "train_seconds",
    "images_per_second",
    "wall_seconds_per_epoch",
    "step_path",
    "inference_flops_fraction",
    "training_flops_fraction",
    "synthetic_data",
    "protocol",
    "best_test_acc_after_pruning",
]
#: what the figures read of a record beyond the table's columns: the layers, the density base,
#: the length of training, the sparsity after every mask change
DETAILS = ["per_layer", "params_prunable", "params_conv_linear", "density_base", "iterations",
           "sparsity_history"]  # fmt: skip
SETTING = ["dataset", "backbone", "init", "target_sparsity", "pruner"]
LEGACY = "no-id"  # setting_id of records written before run ids existed
DEFAULT_PROTOCOL = "fggp_authors"  # records written before protocols were named followed it
UNKNOWN = "unknown"  # the dataset or backbone of a foreign record that names none
LEGACY_REFERENCE = "dense"  # the reference's pruner name in records without a `reference` field
PLOT_FORMATS = (".png", ".pdf", ".svg")
#: the parts of a config a dense run must share with pruned runs to be their reference: what was
#: trained on, which network, how it was optimised and for how long, under which protocol
MATCH_KEYS = ("data", "backbone", "optim", "train.epochs", "train.batch_size", "train.drop_last",
              "train.bf16", "protocol.name")  # fmt: skip
_MISSING = object()


def load_records(root: Path, warn: Callable[[str], object] = print) -> pd.DataFrame:
    """One row per result.json below `root` (flat fields, and the figures' DETAILS), plus its
    path."""
    rows = []
    for path in sorted(Path(root).rglob(RESULT_FILE)):
        try:
            record = read_record(path)
        except ResultsError as error:
            warn(f"skipped: {error}")
            continue
        missing = missing_files(path.parent, record)
        if METRICS_FILE in missing:
            warn(f"{path.parent}: its {METRICS_FILE} is missing: no training curves for it")
        row = {**{c: record.get(c) for c in COLUMNS}, "path": str(path)}
        row["setting_id"] = row["setting_id"] or LEGACY
        row["protocol"] = row["protocol"] or DEFAULT_PROTOCOL
        row["reference"] = bool(record.get("reference", row["pruner"] == LEGACY_REFERENCE))
        row["config"] = record.get("config")
        row.update({key: record.get(key) for key in DETAILS})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*COLUMNS, "reference", "path", "config", *DETAILS])


def completed(records: pd.DataFrame) -> pd.DataFrame:
    """The completed runs, a record without a dataset or backbone put under `unknown`, never
    mixed into a named one."""
    done = records[records["status"] == "completed"]
    return done.fillna({"dataset": UNKNOWN, "backbone": UNKNOWN})


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Completed runs per setting and configuration: accuracy mean, std (NaN for one seed) and
    seed count; mean achieved sparsity; the configuration (of its first run); and `reference`,
    as its runs recorded it (dense training), so that no later step recognises it by a label. A
    record without a dataset or backbone is put under `unknown`, a section of its own."""
    grouped = completed(records).groupby([*SETTING, "setting_id"], dropna=False)
    table = grouped.agg(
        acc_mean=("final_test_acc", "mean"),
        acc_std=("final_test_acc", "std"),
        seeds=("seed", "nunique"),
        achieved_sparsity=("achieved_sparsity", "mean"),
        inference_flops=("inference_flops_fraction", "mean"),
        training_flops=("training_flops_fraction", "mean"),
        images_per_second=("images_per_second", "mean"),
        wall_per_epoch=("wall_seconds_per_epoch", "mean"),
        step_path=("step_path", paths_used),
        protocol=("protocol", "first"),
        best_after_pruning=("best_test_acc_after_pruning", "mean"),
        config=("config", "first"),
        reference=("reference", "first"),
    )
    return table.reset_index()


def paths_used(paths: pd.Series) -> str | None:
    """The step paths a setting's runs took (`cuda_graph`, or `default→eager` after a fallback),
    so that a slower path is never taken for the fast one; None for records older than paths."""
    return ", ".join(sorted({str(p) for p in paths.dropna()})) or None


def comparable(config: dict | None) -> dict[str, object] | None:
    """The flattened keys of MATCH_KEYS in a run's config; None for a record without one."""
    if not isinstance(config, dict) or not config:
        return None
    places = set(place_keys(config))  # where the data lie changes no result
    return {
        key: value
        for key, value in flatten_config(config).items()
        if key not in places and any(key == k or key.startswith(f"{k}.") for k in MATCH_KEYS)
    }


def config_difference(first: dict | None, second: dict | None) -> set[str]:
    """Keys of two comparable() configs that differ (a key missing from both is equal); none
    when either record has no config, which then matches on dataset and backbone only."""
    if first is None or second is None:
        return set()
    keys = first.keys() | second.keys()
    return {k for k in keys if first.get(k, _MISSING) != second.get(k, _MISSING)}


def reference_matches(summary: pd.DataFrame) -> tuple[dict[Hashable, list[Hashable]], list[str]]:
    """For each reference row of the summary (by index), the pruned rows of its dataset and
    backbone whose configs agree with it on MATCH_KEYS: dense training is only a fair reference
    for runs trained like it. References that match none are absent from the mapping, and each
    gets a line naming it and the keys it differs in from the nearest pruned configuration."""
    configs = {i: comparable(c) for i, c in summary["config"].items()}
    matches: dict[Hashable, list[Hashable]] = {}
    lines = []
    for (dataset, backbone), rows in summary.groupby(["dataset", "backbone"], dropna=False):
        pruned = list(rows.index[~rows["reference"]])
        for r in rows.index[rows["reference"]]:
            differences = [config_difference(configs[r], configs[p]) for p in pruned]
            matched = [p for p, keys in zip(pruned, differences, strict=True) if not keys]
            if matched:
                matches[r] = matched
                continue
            nearest = min(map(len, differences), default=0)
            keys = sorted(set().union(*(d for d in differences if len(d) == nearest)))
            more = ", ..." if len(keys) > 6 else ""
            why = f"they differ in: {', '.join(keys[:6])}{more}" if keys else "no pruned runs"
            name, configuration = rows.loc[r, "pruner"], rows.loc[r, "setting_id"]
            lines.append(
                f"left out: {name} run(s) of configuration {configuration} "
                f"({rows.loc[r, 'seeds']} seed(s)) match no setting of {dataset}/{backbone} "
                f"({why})"
            )
    return matches, lines


def label_configurations(summary: pd.DataFrame) -> pd.DataFrame:
    """A pruner run under several configurations in one setting becomes several methods of the
    paper table, `pruner [setting_id]`, never one average."""
    summary = summary.copy()
    several = summary.groupby(SETTING)["setting_id"].transform("nunique") > 1
    summary.loc[several, "pruner"] = [
        f"{p} [{i}]"
        for p, i in zip(
            summary.loc[several, "pruner"], summary.loc[several, "setting_id"], strict=True
        )
    ]
    return summary


def labelled_runs(records: pd.DataFrame, summary: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """The completed runs of the configurations in `summary`, each with its configuration's
    `label` (`labels`, by summary index: the pruner as the tables name it) and `reference`
    flag: what the figures draw, so that they keep apart, and leave out, what the tables do."""
    keys = summary[[*SETTING, "setting_id"]].assign(label=labels)
    return completed(records).merge(keys, on=[*SETTING, "setting_id"])


def config_warnings(summary: pd.DataFrame) -> list[str]:
    """One line per setting of the summary with several configurations, naming the settings in
    which they differ (give it the summary without the dense runs left out: those are named
    apart, and were never shown)."""
    lines = []
    for setting, rows in summary.groupby(SETTING, dropna=False):
        ids = sorted(rows["setting_id"].unique())
        if len(ids) < 2:
            continue
        configs = [rows.loc[rows["setting_id"] == i, "config"].iloc[0] for i in ids]
        configs = [c if isinstance(c, dict) else {} for c in configs]
        differing = sorted(_differing_keys(configs)) or ["(older records without an id)"]
        lines.append(
            f"warning: {'/'.join(map(str, setting))} has runs of {len(ids)} configurations "
            f"({', '.join(ids)}), shown apart; they differ in: {', '.join(differing[:6])}"
        )
    return lines


def _differing_keys(configs: list[dict]) -> set[str]:
    flat = [flatten_config(c) for c in configs]
    keys = set().union(*flat)
    return {k for k in keys if k != "seed" and len({repr(f.get(k)) for f in flat}) > 1}


def report(
    records: pd.DataFrame,
    formats: list[str],
    expected_seeds: int | None,
    published: pd.DataFrame | None,
) -> dict[str, object]:
    """Every table in every format, the statistics and the warnings, for the records given.

    Returns `summary` (one row per kept configuration, labelled), `cells` (the paper table's
    cells with rank, win, beats_dense and reference: what the plots draw), `runs` (the runs of
    the kept configurations with their `label`: what the figures of layers and training curves
    draw), `ranking` (mean ranks per dataset), `texts` (file name -> content: paper_table,
    rankings, costs and, with `published`, published, in each format; the CSVs are tidy and
    numeric), `stats` (dataset -> Friedman/Nemenyi result or None) and `warnings` (lines for
    stderr or a log: configurations shown apart, dense runs left out)."""
    summary = summarize(records)
    matches, left_out_lines = reference_matches(summary)
    left_out = summary["reference"] & ~summary.index.isin(list(matches))
    summary = summary[~left_out]
    warnings = [*config_warnings(summary), *left_out_lines]
    labelled = label_configurations(summary)
    runs = labelled_runs(records, summary, labelled["pruner"])
    summary = labelled
    table = cells(summary, matches)
    ranked = ranks(table)
    table = marked(table, ranked)
    ranking = ranking_table(ranked)
    texts: dict[str, str] = {}
    for fmt in formats:
        suffix = FORMATS[fmt]
        if fmt == "csv":
            texts["paper_table.csv"] = csv_text(paper_table_data(table))
            texts["rankings.csv"] = csv_text(ranking_data(ranking))
            texts["costs.csv"] = csv_text(cost_data(summary))
            if published is not None:
                texts["published.csv"] = csv_text(published_data(summary, published))
            continue
        texts[f"paper_table{suffix}"] = paper_table(table, ranking, expected_seeds, fmt)
        texts[f"rankings{suffix}"] = ranking_text(ranking, fmt)
        texts[f"costs{suffix}"] = cost_text(summary, fmt)
        if published is not None:
            texts[f"published{suffix}"] = comparison(summary, published, fmt)
    return {
        "summary": summary, "cells": table, "runs": runs, "ranking": ranking, "texts": texts,
        "stats": significance(ranked), "warnings": warnings,
    }  # fmt: skip


def significance_line(stats: dict[str, dict | None]) -> str:
    """One line per dataset (`dataset: ...`): datasets are tested apart, never pooled."""
    lines = []
    for dataset, result in stats.items():
        if result is None:
            lines.append(
                f"{dataset}: significance needs at least 3 pruners compared over at least "
                "2 settings"
            )
            continue
        groups = cliques(result["mean_ranks"], result["critical_difference"])
        joined = "; ".join(", ".join(g) for g in groups) or "none"
        lines.append(
            f"{dataset}: Friedman over {result['settings']} settings and "
            f"{len(result['pruners'])} pruners: chi2 = {result['statistic']:.2f}, "
            f"p = {result['p_value']:.3g}; Nemenyi critical difference "
            f"{result['critical_difference']:.2f} at alpha {result['alpha']} "
            f"(not significantly different: {joined})"
        )
    return "\n".join(lines) or "significance: no ranked cells"


def write_report(result: dict, out: Path) -> list[Path]:
    """The tables, statistics and plots of a report into `out`, each written atomically; the
    figures of layers and training curves where the runs recorded what they need."""
    from fggp_repro.foundations.files import write_atomic, write_json_atomic
    from fggp_repro.reporting.run_figures import write_figures
    from fggp_repro.reporting.table_figures import (
        plot_accuracy,
        plot_critical_difference,
        report_colours,
    )

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in result["texts"].items():
        write_atomic(out / name, [text.encode()])
        written.append(out / name)
    stats = result["stats"]
    write_json_atomic(out / "significance.json", stats)
    written.append(out / "significance.json")
    colour = report_colours(result["cells"])  # one colour per pruner in every figure
    plot_accuracy(result["cells"], out / "accuracy.png", colour)
    written.append(out / "accuracy.png")
    groups = {
        d: cliques(s["mean_ranks"], s["critical_difference"])
        for d, s in stats.items()
        if s is not None
    }
    plot_critical_difference(stats, groups, out / "ranks.png", colour, result["ranking"])
    written.append(out / "ranks.png")
    written += write_figures(result["cells"], result["runs"], out, colour)
    return written
