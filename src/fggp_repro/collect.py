"""Gather result.json records under a directory into one pandas table.

`fggp-repro-table RESULTS_DIR` prints final test accuracy (mean +- std over seeds) and achieved
sparsity per dataset, backbone, initial state, target and pruner; `--plot FILE` also draws
accuracy against sparsity, one panel per dataset, backbone and initial state. Seeds are averaged
only within one configuration (the record's setting_id): runs of the same setting under other
configurations, or records of older releases without an id, get rows of their own and a
warning. Unreadable files are named on stderr and skipped; no record is ever changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from fggp_repro.errors import ResultsError
from fggp_repro.ranking import cells, cliques, friedman_nemenyi, ranking_table, ranks
from fggp_repro.records import RESULT_FILE, nearest_existing, read_record
from fggp_repro.tables import (
    FORMATS,
    comparison,
    cost_text,
    marked,
    paper_table,
    protocol_warnings,
    ranking_text,
    read_reference,
)  # fmt: skip

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
    "inference_flops_fraction",
    "training_flops_fraction",
    "synthetic_data",
    "protocol",
    "best_test_acc_after_pruning",
]
SETTING = ["dataset", "backbone", "init", "target_sparsity", "pruner"]
LEGACY = "no-id"  # setting_id of records written before run ids existed
DEFAULT_PROTOCOL = "fggp_authors"  # records written before protocols were named followed it
PLOT_FORMATS = (".png", ".pdf", ".svg")


def load_records(root: Path, warn=print) -> pd.DataFrame:
    """One row per result.json below `root` (flat fields only), plus its path."""
    rows = []
    for path in sorted(Path(root).rglob(RESULT_FILE)):
        try:
            record = read_record(path)
        except ResultsError as error:
            warn(f"skipped: {error}")
            continue
        row = {**{c: record.get(c) for c in COLUMNS}, "path": str(path)}
        row["setting_id"] = row["setting_id"] or LEGACY
        row["protocol"] = row["protocol"] or DEFAULT_PROTOCOL
        row["config"] = record.get("config")
        rows.append(row)
    return pd.DataFrame(rows, columns=[*COLUMNS, "path", "config"])


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Completed runs per setting and configuration: accuracy mean, std (NaN for one seed) and
    seed count; mean achieved sparsity."""
    done = records[records["status"] == "completed"]
    grouped = done.groupby([*SETTING, "setting_id"], dropna=False)
    table = grouped.agg(
        acc_mean=("final_test_acc", "mean"),
        acc_std=("final_test_acc", "std"),
        seeds=("seed", "nunique"),
        achieved_sparsity=("achieved_sparsity", "mean"),
        inference_flops=("inference_flops_fraction", "mean"),
        training_flops=("training_flops_fraction", "mean"),
        protocol=("protocol", "first"),
        best_after_pruning=("best_test_acc_after_pruning", "mean"),
    )
    return table.reset_index()


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


def config_warnings(records: pd.DataFrame) -> list[str]:
    """One line per setting whose completed runs come from several configurations, naming the
    settings in which they differ."""
    done = records[records["status"] == "completed"]
    lines = []
    for setting, rows in done.groupby(SETTING, dropna=False):
        ids = sorted(rows["setting_id"].unique())
        if len(ids) < 2:
            continue
        configs = [rows[rows["setting_id"] == i]["config"].iloc[0] or {} for i in ids]
        differing = sorted(_differing_keys(configs)) or ["(older records without an id)"]
        lines.append(
            f"warning: {'/'.join(map(str, setting))} has runs of {len(ids)} configurations "
            f"({', '.join(ids)}), shown apart; they differ in: {', '.join(differing[:6])}"
        )
    return lines


def _differing_keys(configs: list[dict]) -> set[str]:
    flat = [_flatten(c) for c in configs]
    keys = set().union(*flat)
    return {k for k in keys if k != "seed" and len({repr(f.get(k)) for f in flat}) > 1}


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


PROG = "fggp-repro-table"


def fail(message: str, code: int = 2) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


def check_output_file(path: Path, suffixes: tuple[str, ...]) -> None:
    """An output file must have a known suffix and a directory (or none yet) to go in."""
    if path.suffix.lower() not in suffixes:
        fail(f"{path}: unsupported file type '{path.suffix}' (use {', '.join(suffixes)})")
    where = nearest_existing(path.absolute().parent)
    if not where.is_dir():
        fail(f"{path}: {where} is a file, not a directory")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        fail(message)


def report(
    records: pd.DataFrame,
    formats: list[str],
    expected_seeds: int | None,
    published: pd.DataFrame | None,
) -> dict[str, object]:
    """Every table in every format, and the statistics, for the records given."""
    summary = label_configurations(summarize(records))
    table = cells(summary)
    ranked = ranks(table)
    ranking = ranking_table(ranked)
    expected = expected_seeds or int(table["n"].max())
    order = list(ranking["pruner"])
    texts: dict[str, str] = {}
    for fmt in formats:
        texts[f"paper_table{FORMATS[fmt]}"] = paper_table(
            marked(table, ranked), order, expected, fmt
        )
        texts[f"rankings{FORMATS[fmt]}"] = ranking_text(ranking, fmt)
        texts[f"costs{FORMATS[fmt]}"] = cost_text(summary, fmt)
        if published is not None:
            texts[f"published{FORMATS[fmt]}"] = comparison(summary, published, fmt)
    stats = friedman_nemenyi(ranked)
    return {"summary": summary, "texts": texts, "stats": stats}  # fmt: skip


def significance_line(stats: dict | None) -> str:
    if stats is None:
        return "significance: needs at least 3 pruners compared over at least 2 settings"
    groups = cliques(stats["mean_ranks"], stats["critical_difference"])
    joined = "; ".join(", ".join(g) for g in groups) or "none"
    return (
        f"Friedman over {stats['settings']} settings and {len(stats['pruners'])} pruners: "
        f"chi2 = {stats['statistic']:.2f}, p = {stats['p_value']:.3g}; Nemenyi critical "
        f"difference {stats['critical_difference']:.2f} at alpha {stats['alpha']} "
        f"(not significantly different: {joined})"
    )


def write_report(result: dict, out: Path) -> list[Path]:
    """The tables, statistics and plots of a report into `out`, each written atomically."""
    from fggp_repro.plots import plot_accuracy, plot_critical_difference
    from fggp_repro.records import write_atomic, write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in result["texts"].items():
        write_atomic(out / name, [text.encode()])
        written.append(out / name)
    stats = result["stats"]
    write_json_atomic(out / "significance.json", stats)
    written.append(out / "significance.json")
    plot_accuracy(result["summary"], out / "accuracy.png")
    written.append(out / "accuracy.png")
    if stats is not None:
        groups = cliques(stats["mean_ranks"], stats["critical_difference"])
        plot_critical_difference(stats, groups, out / "ranks.png")
        written.append(out / "ranks.png")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="directory searched for result.json files")
    parser.add_argument(
        "--format",
        nargs="+",
        choices=sorted(FORMATS),
        default=["markdown"],
        help="table formats (default: markdown)",
    )
    parser.add_argument("--out", type=Path, help="write tables, statistics and plots here")
    parser.add_argument("--reference", type=Path, help="CSV of published cells to compare with")
    parser.add_argument("--expected-seeds", type=int, help="mark cells with fewer seeds (n=k)")
    parser.add_argument("--plot", type=Path, help="also draw accuracy vs sparsity to this file")
    args = parser.parse_args(argv)  # fmt: skip
    if not args.root.is_dir():
        fail(f"no such directory: {args.root}")
    if args.plot is not None:
        check_output_file(args.plot, PLOT_FORMATS)
    if args.out is not None and not nearest_existing(args.out.absolute()).is_dir():
        fail(f"--out {args.out}: {nearest_existing(args.out.absolute())} is a file")
    published = None
    if args.reference is not None:
        if not args.reference.is_file():
            fail(f"no such reference file: {args.reference}")
        try:
            published = read_reference(args.reference)
        except ValueError as error:
            fail(str(error))
    records = load_records(args.root, warn=lambda line: print(line, file=sys.stderr))
    if records.empty:
        fail(f"no result records under {args.root}", code=1)
    failed = records[records["status"] != "completed"]
    for _, row in failed.iterrows():
        print(f"not completed ({row['status']}): {row['path']}", file=sys.stderr)
    if len(failed) == len(records):
        fail(f"none of the {len(records)} run(s) under {args.root} completed", code=1)
    for line in config_warnings(records):
        print(line, file=sys.stderr)
    result = report(records, args.format, args.expected_seeds, published)
    if args.out is not None:
        for path in write_report(result, args.out):
            print(f"written: {path}")
    else:
        for text in result["texts"].values():
            print(text)
    print(significance_line(result["stats"]))
    if published is not None:
        for line in protocol_warnings(result["summary"], published):
            print(line, file=sys.stderr)
    if args.plot is not None:
        from fggp_repro.plots import plot_accuracy

        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot_accuracy(result["summary"], args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
