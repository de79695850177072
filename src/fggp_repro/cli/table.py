"""`fggp-repro-table DIR`: the tables, statistics and figures of the records under DIR (or of one
run's result.json), printed and, with --out, written (reporting.collect builds them)."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import NoReturn

import pandas as pd

from fggp_repro.foundations.files import nearest_existing
from fggp_repro.reporting.collect import (
    PLOT_FORMATS,
    load_records,
    report,
    significance_line,
    write_report,
)
from fggp_repro.reporting.tables import FORMATS, protocol_warnings, read_reference
from fggp_repro.runs.records import RESULT_FILE

PROG = "fggp-repro-table"


def fail(message: str, code: int = 2) -> NoReturn:
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


def packaged_references() -> dict[str, Traversable]:
    """Reference CSVs installed with the package, by name: the file name without `.csv`, and
    its part before the first `_` (`granet` for granet_cifar10.csv) where no other file shares
    it."""
    files = sorted(
        (f for f in (resources.files("fggp_repro") / "reference").iterdir()
         if f.name.endswith(".csv")),
        key=lambda f: f.name,
    )  # fmt: skip
    names = {f.name.removesuffix(".csv"): f for f in files}
    short = [name.split("_")[0] for name in names]
    for name, file in list(names.items()):
        prefix = name.split("_")[0]
        if short.count(prefix) == 1:
            names.setdefault(prefix, file)
    return dict(sorted(names.items()))


def load_reference(reference: str) -> pd.DataFrame:
    """`--reference`: a CSV file, or else the name of a packaged one; exit 2 with one line
    (listing the packaged names) when it is neither, or is not a table of published cells."""
    known = packaged_references()
    path = Path(reference)
    if not path.is_file() and reference not in known:
        fail(
            f"no such reference file or packaged reference: {reference} "
            f"(packaged: {', '.join(known) or 'none'})"
        )
    try:
        if path.is_file():
            return read_reference(path)
        with resources.as_file(known[reference]) as packaged:
            return read_reference(packaged)
    except ValueError as error:
        fail(str(error))


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
    parser.add_argument(
        "--reference",
        help="published cells to compare with: a CSV file, or a packaged name (granet)",
    )
    parser.add_argument("--expected-seeds", type=int, help="mark cells with fewer seeds (n=k)")
    parser.add_argument("--plot", type=Path, help="also draw accuracy vs sparsity to this file")
    args = parser.parse_args(argv)  # fmt: skip
    if args.root.is_file() and args.root.name == RESULT_FILE:
        args.root = args.root.parent  # one run's record: the run's folder
    elif args.root.exists() and not args.root.is_dir():
        fail(f"{args.root} is a file: give the folder that holds the runs' {RESULT_FILE} files")
    elif not args.root.exists():
        fail(f"no such directory: {args.root}")
    if args.plot is not None:
        check_output_file(args.plot, PLOT_FORMATS)
    if args.out is not None and not nearest_existing(args.out.absolute()).is_dir():
        fail(f"--out {args.out}: {nearest_existing(args.out.absolute())} is a file")
    published = None if args.reference is None else load_reference(args.reference)
    records = load_records(args.root, warn=lambda line: print(line, file=sys.stderr))
    if records.empty:
        fail(f"no result records under {args.root}", code=1)
    failed = records[records["status"] != "completed"]
    for _, row in failed.iterrows():
        print(f"not completed ({row['status']}): {row['path']}", file=sys.stderr)
    if len(failed) == len(records):
        fail(f"none of the {len(records)} run(s) under {args.root} completed", code=1)
    result = report(records, args.format, args.expected_seeds, published)
    for line in result["warnings"]:
        print(line, file=sys.stderr)
    for name, text in result["texts"].items():
        if args.out is None or not name.endswith(".csv"):
            print(text)
    if args.out is not None:
        for path in write_report(result, args.out):
            print(f"written: {path}")
    print(significance_line(result["stats"]))
    if published is not None:
        for line in protocol_warnings(result["summary"], published):
            print(line, file=sys.stderr)
    if args.plot is not None:
        from fggp_repro.reporting.table_figures import plot_accuracy

        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot_accuracy(result["cells"], args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
