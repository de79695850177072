"""Pictures of the results, written atomically as PNG (or PDF/SVG): accuracy against sparsity,
and the critical-difference diagrams of the rankings; both with a row of panels per dataset,
since no picture may mix or rank accuracies of different datasets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: every pruner keeps its colour in every panel and figure, whichever others are drawn
PALETTE = ["fggp", "gmp", "mfgn_annealed", "granet", "rigl", "set", "snip", "grasp", "synflow",
           "fggp_annealed", "mfgn", "dense"]  # fmt: skip
EXTRA = ["black", "darkgoldenrod", "teal", "navy"]


def colours(pruners: list[str]) -> dict[str, object]:
    """tab10's ten strong colours, then a few more, assigned by a fixed order of pruners."""
    strong = [_pyplot().get_cmap("tab10")(i) for i in range(10)] + EXTRA
    known = PALETTE + sorted(set(pruners) - set(PALETTE))
    return {p: strong[known.index(p) % len(strong)] for p in pruners}


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    _pyplot().close(fig)
    tmp.replace(path)


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


def plot_accuracy(cells: pd.DataFrame, path: Path) -> None:
    """Accuracy (mean +- std over seeds) against target sparsity, a line per pruner; the dense
    runs matching a panel's as a horizontal reference line; a row of panels per dataset, one
    panel per backbone and initial state."""
    plt = _pyplot()
    palette = colours(list(cells["pruner"].unique()))
    panels = accuracy_panels(cells)
    datasets = sorted({dataset for (dataset, _, _), _, _ in panels}) or [""]
    columns = max([sum(p[0][0] == d for p in panels) for d in datasets] + [1])
    fig, axes = plt.subplots(
        len(datasets), columns, figsize=(5 * columns, 4 * len(datasets)), squeeze=False
    )
    used = {d: 0 for d in datasets}
    for (dataset, backbone, init), rows, references in panels:
        ax = axes[datasets.index(dataset)][used[dataset]]
        used[dataset] += 1
        for pruner, line in rows.groupby("pruner"):
            line = line.sort_values("target_sparsity")
            ax.errorbar(
                100 * line["target_sparsity"], line["mean"], yerr=line["std"],
                marker="o", capsize=3, label=pruner, color=palette[pruner],
            )  # fmt: skip
        styles = ["--", ":", "-."]
        for i, (pruner, reference) in enumerate(references.groupby("pruner")):
            ax.axhline(reference["mean"].iloc[0], color="grey", label=pruner,
                       linestyle=styles[i % len(styles)])  # fmt: skip
        ax.set(title=f"{dataset} / {backbone} / init {init}", xlabel="target sparsity (%)")
        ax.set_ylabel("final test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for row, dataset in enumerate(datasets):
        for ax in axes[row][used.get(dataset, 0) :]:
            ax.axis("off")
    fig.tight_layout()
    _save(fig, path)


def plot_critical_difference(
    stats: dict[str, dict | None], groups: dict[str, list[list[str]]], path: Path
) -> None:
    """One critical-difference diagram per dataset, stacked: pruners on a mean-rank axis (1 =
    best, on the left); pruners joined by a bar are not significantly different (Nemenyi, at
    the test's alpha); the CD length is drawn on top. A dataset where the test cannot run gets a
    line saying so instead of a diagram."""
    plt = _pyplot()
    heights = [
        1.2 + 0.35 * len(s["mean_ranks"]) + 0.1 * len(groups.get(d, [])) if s else 0.6
        for d, s in stats.items()
    ]
    fig, axes = plt.subplots(
        len(heights), 1, figsize=(8, sum(heights)), squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for ax, (dataset, result) in zip(axes[:, 0], stats.items(), strict=True):
        ax.axis("off")
        if result is None:
            ax.text(0.5, 0.5, f"{dataset}: too few pruners or settings for the Friedman test",
                    ha="center", va="center", fontsize=9, transform=ax.transAxes)  # fmt: skip
            continue
        _critical_difference_panel(ax, dataset, result, groups.get(dataset, []))
    fig.tight_layout()
    _save(fig, path)


def _critical_difference_panel(ax, dataset: str, stats: dict, groups: list[list[str]]) -> None:
    ranks = stats["mean_ranks"]
    k = len(ranks)
    palette = colours(list(ranks))
    below = 0.25 * max(len(groups) - 1, 0)  # the names start under the last bar
    ax.set_xlim(0.5, k + 2.2)
    ax.set_ylim(-k - 1.5 - below, 2)
    ax.plot([0.5, k + 0.5], [0, 0], color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="black", linewidth=1)
        ax.text(r, 0.35, str(r), ha="center", fontsize=9)
    cd = stats["critical_difference"]
    ax.plot([1, 1 + cd], [1.3, 1.3], color="black", linewidth=2)
    ax.text(1 + cd / 2, 1.5, f"CD = {cd:.2f}", ha="center", fontsize=9)
    for i, (pruner, rank) in enumerate(sorted(ranks.items(), key=lambda x: x[1])):
        y = -1 - below - i
        ax.plot([rank, rank], [0, y], color=palette[pruner], linewidth=1)
        ax.plot(rank, 0, "o", color=palette[pruner])
        ax.text(k + 0.6, y, f"{pruner} ({rank:.2f})", ha="left", va="center", fontsize=9,
                color=palette[pruner])  # fmt: skip
        ax.plot([rank, k + 0.55], [y, y], color=palette[pruner], linewidth=0.8)
    for j, group in enumerate(groups):
        low, high = min(ranks[g] for g in group), max(ranks[g] for g in group)
        ax.plot([low - 0.05, high + 0.05], [-0.4 - 0.25 * j] * 2, color="black", linewidth=4)
    ax.set_title(
        f"{dataset}: mean rank over {stats['settings']} settings (Friedman p = "
        f"{stats['p_value']:.3g}; bars: no significant difference at alpha = {stats['alpha']})",
        fontsize=9,
    )
