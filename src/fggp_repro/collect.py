"""Gather result.json records under a directory into one pandas table.

`fggp-repro-table RESULTS_DIR` prints final test accuracy (mean +- std over seeds) and achieved
sparsity per dataset, backbone, initial state, target and pruner. Unreadable files are named on
stderr and skipped; nothing is ever written or removed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from fggp_repro.errors import ResultsError
from fggp_repro.records import RESULT_FILE, read_record

COLUMNS = [
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


def load_records(root: Path, warn=print) -> pd.DataFrame:
    """One row per result.json below `root` (flat fields only), plus its path."""
    rows = []
    for path in sorted(Path(root).rglob(RESULT_FILE)):
        try:
            record = read_record(path)
        except ResultsError as error:
            warn(f"skipped: {error}")
            continue
        rows.append({**{c: record.get(c) for c in COLUMNS}, "path": str(path)})
    return pd.DataFrame(rows, columns=[*COLUMNS, "path"])


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Completed runs per setting: accuracy mean, std and seed count; mean achieved sparsity."""
    done = records[records["status"] == "completed"]
    grouped = done.groupby(SETTING, dropna=False)
    table = grouped.agg(
        acc_mean=("final_test_acc", "mean"),
        acc_std=("final_test_acc", "std"),
        seeds=("seed", "nunique"),
        achieved_sparsity=("achieved_sparsity", "mean"),
    )
    table["acc_std"] = table["acc_std"].fillna(0.0)
    return table.reset_index()


def format_table(summary: pd.DataFrame) -> str:
    shown = summary.copy()
    shown["accuracy (%)"] = [
        f"{m:.2f} +- {s:.2f}" for m, s in zip(shown["acc_mean"], shown["acc_std"], strict=True)
    ]
    shown["achieved_sparsity"] = shown["achieved_sparsity"].map("{:.4f}".format)
    return shown[[*SETTING, "accuracy (%)", "seeds", "achieved_sparsity"]].to_string(index=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fggp-repro-table", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="directory searched for result.json files")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"fggp-repro-table: error: no such directory: {args.root}", file=sys.stderr)
        sys.exit(2)
    records = load_records(args.root, warn=lambda line: print(line, file=sys.stderr))
    if records.empty:
        print(f"fggp-repro-table: error: no result records under {args.root}", file=sys.stderr)
        sys.exit(1)
    failed = records[records["status"] != "completed"]
    print(format_table(summarize(records)))
    for _, row in failed.iterrows():
        print(f"not completed ({row['status']}): {row['path']}", file=sys.stderr)


if __name__ == "__main__":
    main()
