"""The paper's tables as text: Markdown, LaTeX (booktabs) and CSV, from the cells and ranks of
fggp_repro.ranking; and the comparison with published numbers."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd

from fggp_repro.ranking import REFERENCE, SETTING_COLUMNS

FORMATS = {"markdown": ".md", "latex": ".tex", "csv": ".csv"}
REFERENCE_COLUMNS = ["backbone", "target_sparsity", "init", "pruner", "accuracy", "std", "source"]


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
    return render(header, rows, fmt, note)


def ranking_text(ranking: pd.DataFrame, fmt: str) -> str:
    header = ["pruner", "mean rank", "settings", "wins"]
    rows = [[r.pruner, f"{r.mean_rank:.2f}", str(r.settings), str(int(r.wins))]
            for r in ranking.itertuples()]  # fmt: skip
    return render(header, rows, fmt, "rank 1 is the best mean accuracy; ties share the average")


def render(header: list[str], rows: list[list[str]], fmt: str, note: str = "") -> str:
    if fmt == "latex":
        escaped = [[c.replace("_", r"\_").replace("%", r"\%") for c in r] for r in [header, *rows]]
        lines = [r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule"]
        lines.append(" & ".join(escaped[0]) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(r) + r" \\" for r in escaped[1:]]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + (f"\n% {note}" if note else "") + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        pd.DataFrame(rows, columns=header).to_csv(buffer, index=False)
        return buffer.getvalue()
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + (f"\n\n{note}" if note else "") + "\n"


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
    return published[REFERENCE_COLUMNS]


def comparison(summary: pd.DataFrame, published: pd.DataFrame, fmt: str) -> str:
    """Ours, published and their difference for every cell that has both."""
    ours = summary.rename(columns={"acc_mean": "ours"})
    joined = ours.merge(published, on=["pruner", "backbone", "target_sparsity", "init"])
    header = ["pruner", "setting", "ours", "published", "difference", "source"]
    rows = [
        [r.pruner, setting_label(r.backbone, r.target_sparsity, r.init), f"{r.ours:.2f}",
         f"{r.accuracy:.2f}", f"{r.ours - r.accuracy:+.2f}", str(r.source)]
        for r in joined.itertuples()
        if not math.isnan(r.accuracy)
    ]  # fmt: skip
    return render(header, rows, fmt, "published numbers were transcribed: check them at the source")


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
