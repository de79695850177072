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
from fggp_repro.records import RESULT_FILE, read_record

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
    "synthetic_data",
]
SETTING = ["dataset", "backbone", "init", "target_sparsity", "pruner"]
LEGACY = "no-id"  # setting_id of records written before run ids existed
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
    )
    return table.reset_index()


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


def format_cell(mean: float, std: float, n: int) -> str:
    """mean +- std over seeds; a single seed has no spread, so it says n=1."""
    return f"{mean:.2f} (n=1)" if n == 1 or pd.isna(std) else f"{mean:.2f} +- {std:.2f}"


def format_table(summary: pd.DataFrame) -> str:
    shown = summary.copy()
    shown["accuracy (%)"] = [
        format_cell(m, s, n)
        for m, s, n in zip(shown["acc_mean"], shown["acc_std"], shown["seeds"], strict=True)
    ]
    shown["achieved_sparsity"] = shown["achieved_sparsity"].map("{:.4f}".format)
    columns = [*SETTING, "accuracy (%)", "seeds", "achieved_sparsity"]
    if shown.duplicated(SETTING).any():
        columns.append("setting_id")
    return shown[columns].to_string(index=False)


def plot_accuracy(summary: pd.DataFrame, path: Path) -> None:
    """Accuracy (mean +- std over seeds) against target sparsity, a line per pruner; dense as a
    horizontal reference line. Written atomically (temporary file, then rename)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(summary[summary["pruner"] != "dense"].groupby(["dataset", "backbone", "init"]))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5 * max(len(panels), 1), 4))
    for ax, ((dataset, backbone, init), rows) in zip(fig.axes, panels, strict=False):
        for pruner, line in rows.groupby("pruner"):
            line = line.sort_values("target_sparsity")
            ax.errorbar(
                100 * line["target_sparsity"], line["acc_mean"], yerr=line["acc_std"],
                marker="o", capsize=3, label=pruner,
            )  # fmt: skip
        dense = summary[
            (summary["pruner"] == "dense")
            & (summary["dataset"] == dataset)
            & (summary["backbone"] == backbone)
        ]
        if not dense.empty:
            ax.axhline(dense["acc_mean"].iloc[0], color="grey", linestyle="--", label="dense")
        ax.set(title=f"{dataset} / {backbone} / init {init}", xlabel="sparsity (%)")
        ax.set_ylabel("final test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


PROG = "fggp-repro-table"


def fail(message: str, code: int = 2) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


def check_output_file(path: Path, suffixes: tuple[str, ...]) -> None:
    """An output file must have a known suffix and a directory (or none yet) to go in."""
    if path.suffix.lower() not in suffixes:
        fail(f"{path}: unsupported file type '{path.suffix}' (use {', '.join(suffixes)})")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                fail(f"{path}: {parent} is a file, not a directory")
            break


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="directory searched for result.json files")
    parser.add_argument("--plot", type=Path, help="also draw accuracy vs sparsity to this file")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        fail(f"no such directory: {args.root}")
    if args.plot is not None:
        check_output_file(args.plot, PLOT_FORMATS)
    records = load_records(args.root, warn=lambda line: print(line, file=sys.stderr))
    if records.empty:
        fail(f"no result records under {args.root}", code=1)
    failed = records[records["status"] != "completed"]
    for _, row in failed.iterrows():
        print(f"not completed ({row['status']}): {row['path']}", file=sys.stderr)
    if len(failed) == len(records):
        fail(f"none of the {len(records)} run(s) under {args.root} completed", code=1)
    summary = summarize(records)
    for line in config_warnings(records):
        print(line, file=sys.stderr)
    print(format_table(summary))
    if args.plot is not None:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot_accuracy(summary, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
