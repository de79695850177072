"""Gather result.json records under a directory into one pandas table.

`fggp-repro-table RESULTS_DIR` prints final test accuracy (mean +- std over seeds) and achieved
sparsity per dataset, backbone, initial state, target and pruner; `--plot FILE` also draws
accuracy against sparsity, one panel per dataset, backbone and initial state. Unreadable files
are named on stderr and skipped; no record is ever changed.
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fggp-repro-table", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="directory searched for result.json files")
    parser.add_argument("--plot", type=Path, help="also draw accuracy vs sparsity to this file")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"fggp-repro-table: error: no such directory: {args.root}", file=sys.stderr)
        sys.exit(2)
    records = load_records(args.root, warn=lambda line: print(line, file=sys.stderr))
    if records.empty:
        print(f"fggp-repro-table: error: no result records under {args.root}", file=sys.stderr)
        sys.exit(1)
    failed = records[records["status"] != "completed"]
    summary = summarize(records)
    print(format_table(summary))
    if args.plot is not None:
        plot_accuracy(summary, args.plot)
        print(f"plot: {args.plot}")
    for _, row in failed.iterrows():
        print(f"not completed ({row['status']}): {row['path']}", file=sys.stderr)


if __name__ == "__main__":
    main()
