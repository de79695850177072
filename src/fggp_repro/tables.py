"""The paper's tables as text: Markdown, LaTeX (booktabs) and CSV, from the cells and ranks of
fggp_repro.ranking; and the comparison with published numbers."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from fggp_repro.ranking import REFERENCE, SETTING_COLUMNS

FORMATS = {"markdown": ".md", "latex": ".tex", "csv": ".csv"}
REFERENCE_COLUMNS = ["backbone", "target_sparsity", "init", "pruner", "accuracy", "std", "source"]
UNKNOWN_PROTOCOL = "unknown"
#: rows a reader could mistake for one another: the two GraNets
ROW_NOTES = {
    "mfgn_annealed": "mfgn_annealed is the FGGP authors' \"GraNet in our framework\": GraNet's "
    "pruning rule (magnitude first, annealed count) on FGGP's schedule, without regeneration",
    "granet": "granet is GraNet's own algorithm (Liu et al. 2021): global magnitude pruning in "
    "its own window plus per-layer regeneration for the whole run",
}


def setting_label(backbone: str, target: float, init: str) -> str:
    return f"{backbone} {100 * target:g}% {init}"


def marked(table: pd.DataFrame, ranked: pd.DataFrame) -> pd.DataFrame:
    """Cells with their rank, whether they are the best of their setting, and whether they beat
    dense training of the same backbone."""
    out = table.merge(
        ranked[["pruner", *SETTING_COLUMNS, "rank", "win"]], on=["pruner", *SETTING_COLUMNS],
        how="left",
    )  # fmt: skip
    dense = table[table["pruner"] == REFERENCE].set_index(SETTING_COLUMNS)["mean"]
    keys = list(zip(out["backbone"], out["target_sparsity"], out["init"], strict=True))
    out["beats_dense"] = [
        pruner != REFERENCE and key in dense.index and mean > dense[key]
        for pruner, key, mean in zip(out["pruner"], keys, out["mean"], strict=True)
    ]
    out["win"] = out["win"].fillna(False).astype(bool)
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


def paper_table(cells: pd.DataFrame, order: list[str], expected_n: int, fmt: str) -> str:
    """One row per pruner (in `order`, dense last), one column per setting; missing cells are
    shown as missing, never as zero."""
    settings = sorted({tuple(r) for r in cells[SETTING_COLUMNS].itertuples(index=False)})
    header = ["pruner", *(setting_label(*s) for s in settings)]
    by_key = {(r["pruner"], r["backbone"], r["target_sparsity"], r["init"]): r
              for _, r in cells.iterrows()}  # fmt: skip
    pruners = [p for p in order if p != REFERENCE] + [REFERENCE] * (REFERENCE in set(cells.pruner))
    rows = [
        [p, *(cell_text(by_key[(p, *s)], expected_n, fmt) if (p, *s) in by_key else "–"
              for s in settings)]
        for p in pruners
    ]  # fmt: skip
    note = "best per setting in bold; † beats dense training; (n=k): fewer seeds than expected"
    named = [ROW_NOTES[p] for p in ROW_NOTES if any(r.split(" [")[0] == p for r in pruners)]
    return render(header, rows, fmt, "\n".join([note, *named]))


def ranking_text(ranking: pd.DataFrame, fmt: str) -> str:
    header = ["pruner", "mean rank", "settings", "wins"]
    rows = [[r.pruner, f"{r.mean_rank:.2f}", str(r.settings), str(int(r.wins))]
            for r in ranking.itertuples()]  # fmt: skip
    return render(header, rows, fmt, "rank 1 is the best mean accuracy; ties share the average")


def render(header: list[str], rows: list[list[str]], fmt: str, note: str = "") -> str:
    if fmt == "latex":
        escaped = [[latex_text(c) for c in r] for r in [header, *rows]]
        lines = [r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule"]
        lines.append(" & ".join(escaped[0]) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(r) + r" \\" for r in escaped[1:]]
        lines += [r"\bottomrule", r"\end{tabular}"]
        comments = "".join(f"\n% {line}" for line in note.splitlines())
        return "\n".join(lines) + comments + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        pd.DataFrame(rows, columns=header).to_csv(buffer, index=False)
        return buffer.getvalue()
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = "".join(f"\n\n{line}" for line in note.splitlines())
    return "\n".join(lines) + notes + "\n"


def latex_text(cell: str) -> str:
    return cell.replace("_", r"\_").replace("%", r"\%").replace("≠", r"$\neq$")


def read_reference(path: Path) -> pd.DataFrame:
    """Published cells; raises ValueError with one line when the file is not such a table."""
    try:
        published = pd.read_csv(path, comment="#", keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    missing = [c for c in REFERENCE_COLUMNS if c not in published.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}")
    for column in ("target_sparsity", "accuracy"):
        if not pd.api.types.is_numeric_dtype(published[column]):
            raise ValueError(f"{path}: column {column} must hold numbers")
    published = published.copy()
    if "protocol" not in published.columns:
        published["protocol"] = UNKNOWN_PROTOCOL
    published["protocol"] = published["protocol"].fillna(UNKNOWN_PROTOCOL).astype(str)
    return published[[*REFERENCE_COLUMNS, "protocol"]]


def compared_cells(summary: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Our cells joined with the published cells of the same pruner and setting."""
    ours = summary.rename(columns={"acc_mean": "ours", "protocol": "our_protocol"})
    joined = ours.merge(published, on=["pruner", "backbone", "target_sparsity", "init"])
    return joined[joined["accuracy"].notna()]


def comparison(summary: pd.DataFrame, published: pd.DataFrame, fmt: str) -> str:
    """Ours, published and their difference for every cell that has both, with the protocol
    each side followed. Our final-epoch accuracy is the main figure; where a run also recorded
    the best test accuracy after pruning (GraNet's protocol), it stands beside it, marked."""
    joined = compared_cells(summary, published)
    header = ["pruner", "setting", "ours", "ours, best after pruning*", "published",
              "difference", "protocols (ours / published)", "source"]  # fmt: skip
    rows = [
        [r.pruner, setting_label(r.backbone, r.target_sparsity, r.init), f"{r.ours:.2f}",
         "–" if pd.isna(r.best_after_pruning) else f"{r.best_after_pruning:.2f}",
         f"{r.accuracy:.2f}", f"{r.ours - r.accuracy:+.2f}",
         protocol_pair(r.our_protocol, r.protocol), str(r.source)]
        for r in joined.itertuples()
    ]  # fmt: skip
    note = (
        "published numbers were transcribed: check them at the source\n"
        "ours: final-epoch test accuracy, the difference is taken from it; *best test accuracy "
        "over the epochs after the pruning window, selected on test as GraNet reports it"
    )
    return render(header, rows, fmt, note)


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
    """Accuracy next to inference and training FLOPs (fractions of dense), cell by cell."""
    header = ["pruner", "setting", "accuracy", "inference FLOPs", "training FLOPs"]

    def times(value: float) -> str:
        return "–" if pd.isna(value) else f"{value:.3f}x"

    rows = [
        [r.pruner, setting_label(r.backbone, r.target_sparsity, r.init), f"{r.acc_mean:.2f}",
         times(r.inference_flops), times(r.training_flops)]
        for r in summary.sort_values(["backbone", "target_sparsity", "init", "pruner"]).itertuples()
    ]  # fmt: skip
    return render(header, rows, fmt, "FLOPs as a fraction of the dense network (RigL's convention)")
