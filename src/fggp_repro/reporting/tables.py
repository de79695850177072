"""The paper's tables: for reading, Markdown and LaTeX (booktabs), one section per dataset, from
the cells and ranks of reporting.ranking; for computing, tidy numeric CSV exports (one row per
cell, a dataset column, no display strings); and the comparison with published numbers."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from fggp_repro.foundations.errors import first_line
from fggp_repro.reporting.ranking import SETTING_COLUMNS

FORMATS = {"markdown": ".md", "latex": ".tex", "csv": ".csv"}
REFERENCE_COLUMNS = ["backbone", "target_sparsity", "init", "pruner", "accuracy", "std", "source"]
UNKNOWN_PROTOCOL = "unknown"
#: the dataset of a published row when its file has no `dataset` column
DEFAULT_DATASET = "cifar10"
#: rows a reader could mistake for one another: the two GraNets
ROW_NOTES = {
    "mfgn_annealed": "mfgn_annealed is the FGGP authors' \"GraNet in our framework\": GraNet's "
    "pruning rule (magnitude first, annealed count) on FGGP's schedule, without regeneration",
    "granet": "granet is GraNet's own algorithm (Liu et al. 2021): global magnitude pruning in "
    "its own window plus per-layer regeneration for the whole run",
}
#: a section of a display table: the dataset, the header, the rows
Section = tuple[str, list[str], list[list[str]]]


def setting_label(backbone: str, target: float, init: str) -> str:
    """A setting within one dataset's section (the dataset is the section's heading)."""
    return f"{backbone} {100 * target:g}% {init}"


def marked(table: pd.DataFrame, ranked: pd.DataFrame) -> pd.DataFrame:
    """Cells with their rank (NaN for reference rows), whether they are the best of their
    setting, and whether they beat the dense training they match (`dense_mean`)."""
    out = table.merge(
        ranked[["pruner", *SETTING_COLUMNS, "rank", "win"]], on=["pruner", *SETTING_COLUMNS],
        how="left",
    )  # fmt: skip
    out["win"] = out["win"].astype("boolean").fillna(False).astype(bool)
    out["beats_dense"] = ~out["reference"] & (out["mean"] > out["dense_mean"])
    return out


def cell_text(row: pd.Series, expected_n: int, fmt: str) -> str:
    pm = r"$\pm$" if fmt == "latex" else "±"
    spread = "" if row["n"] < 2 or pd.isna(row["std"]) else f" {pm} {row['std']:.2f}"
    text = f"{row['mean']:.2f}{spread}"
    if row["n"] < expected_n or row["n"] == 1:
        text += f" (n={row['n']})"
    if row["win"]:
        text = rf"\textbf{{{text}}}" if fmt == "latex" else f"**{text}**"
    if row["beats_dense"]:
        text += r"$^\dagger$" if fmt == "latex" else " †"
    return text


def paper_table(
    cells: pd.DataFrame, ranking: pd.DataFrame, expected_n: int | None, fmt: str
) -> str:
    """Per dataset: one row per pruner (in that dataset's mean-rank order, reference rows last),
    one column per setting; missing cells are shown as missing, never as zero. `expected_n`
    None: a dataset expects the most seeds any of its cells has."""
    sections = []
    for dataset, rows in cells.groupby("dataset", sort=True):
        settings = sorted({tuple(r) for r in rows[SETTING_COLUMNS[1:]].itertuples(index=False)})
        by_key = {(r["pruner"], r["backbone"], r["target_sparsity"], r["init"]): r
                  for _, r in rows.iterrows()}  # fmt: skip
        ranked = list(ranking.loc[ranking["dataset"] == dataset, "pruner"])
        references = sorted(set(rows.loc[rows["reference"], "pruner"]))
        expected = expected_n or int(rows["n"].max())
        body = [
            [p, *(cell_text(by_key[(p, *s)], expected, fmt) if (p, *s) in by_key else "–"
                  for s in settings)]
            for p in [*ranked, *references]
        ]  # fmt: skip
        sections.append((dataset, ["pruner", *(setting_label(*s) for s in settings)], body))
    note = "best per setting in bold; † beats dense training; (n=k): fewer seeds than expected"
    named = set(cells["pruner"].str.split(" [", regex=False).str[0])
    return render(
        sections, fmt, "\n".join([note, *(ROW_NOTES[p] for p in ROW_NOTES if p in named)])
    )


def ranking_text(ranking: pd.DataFrame, fmt: str) -> str:
    """Mean ranks (and how many settings each is over), settings and wins, a section per
    dataset."""
    header = ["pruner", "mean rank", "over", "settings", "wins"]

    def row(r: Any) -> list[str]:
        return [r.pruner, f"{r.mean_rank:.2f}", str(r.over), str(r.settings), str(int(r.wins))]

    sections = per_dataset(ranking, header, row)
    note = (
        "rank 1 is the best mean accuracy; ties share the average; datasets are ranked apart\n"
        "mean rank over the settings every pruner of the dataset has (over); settings and wins: "
        "all of the pruner's own (where the pruners share none, each mean is over its own, "
        "more settings first)"
    )
    return render(sections, fmt, note)


def per_dataset(
    table: pd.DataFrame, header: list[str], row: Callable[[Any], list[str]]
) -> list[Section]:
    """A section per dataset (in name order): its rows of `table`, each made by `row`."""
    return [
        (dataset, header, [row(r) for r in rows.itertuples()])
        for dataset, rows in table.groupby("dataset", sort=True)
    ]


def render(sections: Iterable[Section], fmt: str, note: str = "") -> str:
    """Markdown (a `### dataset` heading over each table) or LaTeX (a `% dataset` comment over
    each tabular), the note once at the end; a single dataset still gets its heading, so every
    output has the same shape."""
    if fmt == "latex":
        blocks = [f"% {dataset}\n" + _latex(header, rows) for dataset, header, rows in sections]
        comments = "\n".join(f"% {line}" for line in note.splitlines())
        return "\n\n".join(blocks) + ("\n" if blocks and comments else "") + comments + "\n"
    if fmt != "markdown":
        raise ValueError(f"display tables are Markdown or LaTeX, not {fmt}")
    blocks = [f"### {dataset}\n" + _markdown(header, rows) for dataset, header, rows in sections]
    return "\n\n".join([*blocks, *note.splitlines()]) + "\n"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _latex(header: list[str], rows: list[list[str]]) -> str:
    escaped = [[latex_text(c) for c in r] for r in [header, *rows]]
    lines = [r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule"]
    lines += [" & ".join(escaped[0]) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in escaped[1:]]
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"])


def latex_text(cell: str) -> str:
    return cell.replace("_", r"\_").replace("%", r"\%").replace("≠", r"$\neq$")


#: decimals a CSV keeps: accuracies and ranks to 1e-4, fractions to 1e-6 (no float noise)
CSV_DECIMALS = 6


def csv_text(table: pd.DataFrame) -> str:
    """A tidy CSV, its numbers rounded to CSV_DECIMALS decimals, so that 78.8 reads 78.8 and
    not 78.80000000000001."""
    buffer = io.StringIO()
    table.round(CSV_DECIMALS).to_csv(buffer, index=False)
    return buffer.getvalue()


def paper_table_data(cells: pd.DataFrame) -> pd.DataFrame:
    """The paper table as data (paper_table.csv): one row per (dataset, backbone, init, target,
    pruner), numbers as numbers; rank empty for reference rows, which `reference` flags."""
    columns = ["dataset", "backbone", "init", "target_sparsity", "pruner", "mean", "std", "n",
               "rank", "win", "beats_dense", "reference", "protocol"]  # fmt: skip
    return cells.sort_values(columns[:5])[columns].reset_index(drop=True)


def ranking_data(ranking: pd.DataFrame) -> pd.DataFrame:
    """rankings.csv: one row per (dataset, pruner)."""
    return ranking[["dataset", "pruner", "mean_rank", "over", "settings", "wins"]]


def cost_data(summary: pd.DataFrame) -> pd.DataFrame:
    """costs.csv: accuracy, FLOPs fractions, speed and the step path per run configuration,
    numbers as numbers."""
    order = ["dataset", "backbone", "init", "target_sparsity", "pruner"]
    data = summary.sort_values(order).rename(columns={
        "acc_mean": "accuracy", "inference_flops": "inference_flops_fraction",
        "training_flops": "training_flops_fraction", "wall_per_epoch": "wall_seconds_per_epoch",
    })  # fmt: skip
    columns = [*order, "accuracy", "inference_flops_fraction", "training_flops_fraction",
               "images_per_second", "wall_seconds_per_epoch", "step_path"]  # fmt: skip
    return data[columns].reset_index(drop=True)


def published_data(summary: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """published.csv: every cell that has both ours and a published number, numerically."""
    joined = compared_cells(summary, published).rename(
        columns={"accuracy": "published", "protocol": "published_protocol"}
    )
    joined["difference"] = joined["ours"] - joined["published"]
    columns = ["dataset", "backbone", "init", "target_sparsity", "pruner", "ours",
               "best_after_pruning", "published", "difference", "our_protocol",
               "published_protocol", "source"]  # fmt: skip
    return joined.sort_values(columns[:5])[columns].reset_index(drop=True)


def read_reference(path: Path) -> pd.DataFrame:
    """Published cells; raises ValueError with one line when the file is not such a table. A
    file without a `dataset` column holds CIFAR-10 cells, as every published one did so far."""
    try:
        published = pd.read_csv(path, comment="#", keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {first_line(error)}") from None
    missing = [c for c in REFERENCE_COLUMNS if c not in published.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}")
    for column in ("target_sparsity", "accuracy"):
        if not pd.api.types.is_numeric_dtype(published[column]):
            raise ValueError(f"{path}: column {column} must hold numbers")
    published = published.copy()
    for column, default in (("protocol", UNKNOWN_PROTOCOL), ("dataset", DEFAULT_DATASET)):
        if column not in published.columns:
            published[column] = default
        published[column] = published[column].fillna(default).astype(str)
    return published[["dataset", *REFERENCE_COLUMNS, "protocol"]]


def compared_cells(summary: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Our cells joined with the published cells of the same dataset, pruner and setting."""
    ours = summary.rename(columns={"acc_mean": "ours", "protocol": "our_protocol"})
    joined = ours.merge(published, on=["pruner", *SETTING_COLUMNS])
    return joined[joined["accuracy"].notna()]


def comparison(summary: pd.DataFrame, published: pd.DataFrame, fmt: str) -> str:
    """Ours, published and their difference for every cell that has both, with the protocol
    each side followed, a section per dataset of ours. Our final-epoch accuracy is the main
    figure; where a run also recorded the best test accuracy after pruning (GraNet's protocol),
    it stands beside it, marked."""
    joined = compared_cells(summary, published)
    header = ["pruner", "setting", "ours", "ours, best after pruning*", "published",
              "difference", "protocols (ours / published)", "source"]  # fmt: skip
    sections = [
        (dataset, header, [
            [r.pruner, setting_label(r.backbone, r.target_sparsity, r.init), f"{r.ours:.2f}",
             "–" if pd.isna(r.best_after_pruning) else f"{r.best_after_pruning:.2f}",
             f"{r.accuracy:.2f}", f"{r.ours - r.accuracy:+.2f}",
             protocol_pair(r.our_protocol, r.protocol), str(r.source)]
            for r in joined[joined["dataset"] == dataset].itertuples()
        ])
        for dataset in sorted(set(summary["dataset"]))
    ]  # fmt: skip
    note = (
        "published numbers were transcribed: check them at the source\n"
        "ours: final-epoch test accuracy, the difference is taken from it; *best test accuracy "
        "over the epochs after the pruning window, selected on test as GraNet reports it"
    )
    return render(sections, fmt, note)


def protocol_pair(ours: str, published: str) -> str:
    return f"{ours} / {published}" if ours == published else f"{ours} ≠ {published}"


def protocol_warnings(summary: pd.DataFrame, published: pd.DataFrame) -> list[str]:
    """One line per pair of protocols compared with each other that are not the same."""
    joined = compared_cells(summary, published)
    pairs = joined.groupby(["our_protocol", "protocol"]).size()
    return [
        f"warning: {n} cell(s) of runs under protocol {ours} are compared with published cells "
        f"under protocol {theirs}: not like with like (experiment=granet_protocol runs GraNet's)"
        for (ours, theirs), n in pairs.items()
        if ours != theirs
    ]


def cost_text(summary: pd.DataFrame, fmt: str) -> str:
    """Accuracy next to inference and training FLOPs (fractions of dense), training speed,
    wall time per epoch and the step path that ran, cell by cell, a section per dataset."""
    header = ["pruner", "setting", "accuracy", "inference FLOPs", "training FLOPs", "images/s",
              "wall s/epoch", "step path"]  # fmt: skip

    def times(value: float) -> str:
        return "–" if pd.isna(value) else f"{value:.3f}x"

    def number(value: float, digits: int) -> str:
        return "–" if pd.isna(value) else f"{value:,.{digits}f}"

    def row(r: Any) -> list[str]:
        return [r.pruner, setting_label(r.backbone, r.target_sparsity, r.init), f"{r.acc_mean:.2f}",
                times(r.inference_flops), times(r.training_flops), number(r.images_per_second, 0),
                number(r.wall_per_epoch, 2), r.step_path or "–"]  # fmt: skip

    order = ["backbone", "target_sparsity", "init", "pruner"]
    sections = per_dataset(summary.sort_values(order), header, row)
    note = (
        "FLOPs as a fraction of the dense network (RigL's convention); images/s over the training "
        "steps, wall s/epoch with tests, checkpoints and compilation; the step path that ran "
        "(a → names a fallback)"
    )
    return render(sections, fmt, note)
