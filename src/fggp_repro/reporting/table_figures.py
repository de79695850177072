"""Pictures of the results, written atomically as PNG (or PDF/SVG): accuracy against sparsity,
and the critical-difference diagrams of the rankings; both with a row of panels per dataset,
since no picture may mix or rank accuracies of different datasets. Every figure of a report
takes its colours from one mapping (`report_colours`), so a pruner looks the same in each."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: every pruner keeps its colour in every panel and figure, whichever others are drawn
PALETTE = ("fggp", "gmp", "mfgn_annealed", "granet", "rigl", "set", "snip", "grasp", "synflow",
           "fggp_annealed", "mfgn")  # fmt: skip
#: PALETTE's colours in its order, then those of other names: tab10 without its grey, which
#: stays the reference's
STRONG = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
          "tab:olive", "tab:cyan", "black", "darkgoldenrod", "teal", "navy", "magenta",
          "yellowgreen", "slateblue", "chocolate")  # fmt: skip
NEUTRAL = "grey"  # dense training, in every figure


def colours(pruners: Iterable[str], references: Iterable[str] = ()) -> dict[str, str]:
    """A colour per name: PALETTE's pruners a fixed one, other names (a new pruner, a pruner's
    configurations `gmp [id]`) the colours left, in sorted order, and references NEUTRAL. The
    others depend on which names are given: build one mapping from every name a report draws
    (`report_colours`) and give it to every figure."""
    references = set(references)
    names = set(pruners) - references
    spare = STRONG[len(PALETTE) :]
    others = sorted(names - set(PALETTE))
    mapping = {p: STRONG[PALETTE.index(p)] for p in names & set(PALETTE)}
    mapping.update({p: spare[i % len(spare)] for i, p in enumerate(others)})
    return {**mapping, **dict.fromkeys(references, NEUTRAL)}


def report_colours(cells: pd.DataFrame) -> dict[str, str]:
    """The one mapping of a report's figures, from its cells (labels as the tables show them)."""
    return colours(cells["pruner"], cells.loc[cells["reference"], "pruner"])


#: characters of a figure title's line per inch of the figure's width, at its default size
TITLE_CHARACTERS_PER_INCH = 11


def title(fig, text: str) -> None:
    """The figure's title, each line wrapped to the figure's width: nothing is cut at its
    edges, however narrow the figure."""
    import textwrap

    width = int(fig.get_figwidth() * TITLE_CHARACTERS_PER_INCH)
    fig.suptitle("\n".join(textwrap.fill(line, max(width, 30)) for line in text.splitlines()))


def save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    pyplot().close(fig)
    tmp.replace(path)


def seeds_text(n: Iterable[int]) -> str:
    """`n=2`, or `n=1–3` when the cells of one line have different seed counts."""
    low, high = min(n), max(n)
    return f"n={low}" if low == high else f"n={low}–{high}"


Panel = tuple[tuple[str, str, str], pd.DataFrame, pd.DataFrame]


def accuracy_panels(cells: pd.DataFrame) -> list[Panel]:
    """The panels of the accuracy plot, from the report's cells: one per (dataset, backbone,
    init) that has pruned cells, each with those cells and the reference cells placed under its
    settings (only references matching its runs, so never a panel of their own)."""
    pruned, references = cells[~cells["reference"]], cells[cells["reference"]]
    panels = []
    for key, rows in pruned.groupby(["dataset", "backbone", "init"], sort=True):
        dataset, backbone, init = key
        here = (references["dataset"] == dataset) & (references["backbone"] == backbone)
        panels.append((key, rows, references[here & (references["init"] == init)]))
    return panels


def plot_accuracy(cells: pd.DataFrame, path: Path, colour: dict[str, str] | None = None) -> Any:
    """Draw `accuracy_figure` to `path`; returns the (closed) figure."""
    fig = accuracy_figure(cells, colour or report_colours(cells))
    save(fig, path)
    return fig


def accuracy_figure(cells: pd.DataFrame, colour: dict[str, str]) -> Any:
    """Accuracy (mean +- std over seeds) at each measured target sparsity, a marker per pruner
    and target; the dense runs matching a panel's as horizontal reference lines; a row of panels
    per dataset, one panel per backbone and initial state. Targets are categories, evenly
    spaced and never joined by lines: nothing was measured between them. The panels of a row
    share their accuracy axis, so that they compare at a glance (datasets do not)."""
    plt = pyplot()
    panels = accuracy_panels(cells)
    datasets = sorted({dataset for (dataset, _, _), _, _ in panels}) or [""]
    columns = max([sum(p[0][0] == d for p in panels) for d in datasets] + [1])
    fig, axes = plt.subplots(
        len(datasets), columns, figsize=(5 * columns, 4.4 * len(datasets) + 0.4),
        squeeze=False, sharey="row", layout="constrained",
    )  # fmt: skip
    used = {d: 0 for d in datasets}
    for (dataset, backbone, init), rows, references in panels:
        ax = axes[datasets.index(dataset)][used[dataset]]
        used[dataset] += 1
        targets = sorted(rows["target_sparsity"].unique())
        pruners = sorted(rows["pruner"].unique())
        step = 0.5 / len(pruners)  # side by side within a target, so no bar hides another
        for i, pruner in enumerate(pruners):
            line = rows[rows["pruner"] == pruner]
            x = [targets.index(t) + (i - (len(pruners) - 1) / 2) * step
                 for t in line["target_sparsity"]]  # fmt: skip
            ax.errorbar(
                x, line["mean"], yerr=line["std"], fmt="o", capsize=3, color=colour[pruner],
                label=f"{pruner} ({seeds_text(line['n'])})",
            )  # fmt: skip
        styles = ["--", ":", "-."]
        for i, (pruner, reference) in enumerate(references.groupby("pruner")):
            ax.axhline(reference["mean"].iloc[0], color=colour.get(pruner, NEUTRAL),
                       linestyle=styles[i % len(styles)],
                       label=f"{pruner} ({seeds_text(reference['n'])})")  # fmt: skip
        ax.set_xticks(range(len(targets)), [f"{100 * t:g}%" for t in targets])
        ax.set_xlim(-0.5, len(targets) - 0.5)
        ax.set(title=f"{dataset} / {backbone} / init {init}", xlabel="target sparsity")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    for row, dataset in enumerate(datasets):
        axes[row][0].set_ylabel("final test accuracy (%)")
        for ax in axes[row][used.get(dataset, 0) :]:
            ax.axis("off")
    title(fig, "Final test accuracy at each measured target\nmean, error bar ±1 std over the n "
               "seeds in the legend (none where n=1)")  # fmt: skip
    return fig


def plot_critical_difference(
    stats: dict[str, dict | None],
    groups: dict[str, list[list[str]]],
    path: Path,
    colour: dict[str, str] | None = None,
    ranking: pd.DataFrame | None = None,
) -> Any:
    """One critical-difference diagram per dataset, stacked: pruners on a mean-rank axis (1 =
    best, on the left; lower is better); pruners joined by a bar are not significantly
    different (Nemenyi, at the test's alpha); the CD length is drawn on top. Where the test
    cannot run, the dataset's mean ranks from `ranking` are drawn without bars, and its title
    says why. Returns the (closed) figure."""
    plt = pyplot()
    panels = {d: _rank_panel(d, s, ranking) for d, s in stats.items()}
    if colour is None:
        colour = colours({p for panel in panels.values() if panel for p in panel["mean_ranks"]})
    heights = [
        1.4 + 0.35 * len(panel["mean_ranks"]) + 0.1 * len(groups.get(d, [])) if panel else 0.6
        for d, panel in panels.items()
    ]
    fig, axes = plt.subplots(
        len(heights), 1, figsize=(8, sum(heights)), squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for ax, (dataset, panel) in zip(axes[:, 0], panels.items(), strict=True):
        ax.axis("off")
        if panel is None:
            ax.text(0.5, 0.5, f"{dataset}: no ranked cells", ha="center", va="center",
                    fontsize=9, transform=ax.transAxes)  # fmt: skip
            continue
        _critical_difference_panel(ax, panel, groups.get(dataset, []), colour)
    fig.tight_layout()
    save(fig, path)
    return fig


def _rank_panel(dataset: str, stats: dict | None, ranking: pd.DataFrame | None) -> dict | None:
    """What a dataset's panel draws: the test's mean ranks and critical difference, or, where
    the test could not run, the ranking table's mean ranks and no critical difference."""
    if stats is not None:
        return {
            "mean_ranks": stats["mean_ranks"], "cd": stats["critical_difference"],
            "title": f"{dataset}: mean rank over {stats['settings']} settings, lower is better "
            f"(Friedman p = {stats['p_value']:.3g}; bars: no significant difference at alpha = "
            f"{stats['alpha']})",
        }  # fmt: skip
    rows = None if ranking is None else ranking[ranking["dataset"] == dataset]
    if rows is None or rows.empty:
        return None
    over = sorted(set(rows["over"]))
    return {
        "mean_ranks": dict(zip(rows["pruner"], rows["mean_rank"], strict=True)), "cd": None,
        "title": f"{dataset}: mean rank over {'/'.join(map(str, over))} setting(s), lower is "
        "better; no significance test (it needs 3 pruners compared over 2 shared settings)",
    }  # fmt: skip


def _critical_difference_panel(
    ax, panel: dict, groups: list[list[str]], colour: dict[str, str]
) -> None:
    """Each pruner's marker sits on its own row, where its line turns to its name: pruners of
    equal mean rank stay visible side by side instead of one marker covering the other."""
    ranks = panel["mean_ranks"]
    k = len(ranks)
    below = 0.25 * max(len(groups) - 1, 0)  # the names start under the last bar
    ax.set_xlim(0.5, k + 2.2)
    ax.set_ylim(-k - 1.5 - below, 2)
    ax.plot([0.5, k + 0.5], [0, 0], color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="black", linewidth=1)
        ax.text(r, 0.35, str(r), ha="center", fontsize=9)
    ax.text(k + 0.6, 0, "mean rank\n(lower is better)", va="center", fontsize=9)
    cd = panel["cd"]
    if cd is not None:
        ax.plot([1, 1 + cd], [1.3, 1.3], color="black", linewidth=2)
        ax.text(1 + cd / 2, 1.5, f"CD = {cd:.2f}", ha="center", fontsize=9)
    for i, (pruner, rank) in enumerate(sorted(ranks.items(), key=lambda x: x[1])):
        y = -1 - below - i
        z = 2 + k - i  # a shorter drop lies over a longer one at the same rank
        ax.plot([rank, rank], [0, y], color=colour[pruner], linewidth=1, zorder=z)
        ax.plot([rank, k + 0.55], [y, y], color=colour[pruner], linewidth=0.8, zorder=z)
        ax.plot(rank, y, "o", color=colour[pruner], zorder=z + k)
        ax.text(k + 0.6, y, f"{pruner} ({rank:.2f})", ha="left", va="center", fontsize=9,
                color=colour[pruner])  # fmt: skip
    for j, group in enumerate(groups):
        low, high = min(ranks[g] for g in group), max(ranks[g] for g in group)
        ax.plot([low - 0.05, high + 0.05], [-0.4 - 0.25 * j] * 2, color="black", linewidth=4)
    ax.set_title(panel["title"], fontsize=9, wrap=True)
