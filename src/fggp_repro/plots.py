"""Pictures of the results, written atomically as PNG (or PDF/SVG): accuracy against sparsity,
and the critical-difference diagram of the rankings."""

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


def plot_accuracy(summary: pd.DataFrame, path: Path) -> None:
    """Accuracy (mean +- std over seeds) against target sparsity, a line per pruner; dense as a
    horizontal reference line; one panel per dataset, backbone and initial state."""
    plt = _pyplot()
    palette = colours(list(summary["pruner"].unique()))
    panels = list(summary[summary["pruner"] != "dense"].groupby(["dataset", "backbone", "init"]))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5 * max(len(panels), 1), 4))
    for ax, ((dataset, backbone, init), rows) in zip(fig.axes, panels, strict=False):
        for pruner, line in rows.groupby("pruner"):
            line = line.sort_values("target_sparsity")
            ax.errorbar(
                100 * line["target_sparsity"], line["acc_mean"], yerr=line["acc_std"],
                marker="o", capsize=3, label=pruner, color=palette[pruner],
            )  # fmt: skip
        dense = summary[
            (summary["pruner"] == "dense")
            & (summary["dataset"] == dataset)
            & (summary["backbone"] == backbone)
        ]
        if not dense.empty:
            ax.axhline(dense["acc_mean"].iloc[0], color="grey", linestyle="--", label="dense")
        ax.set(title=f"{dataset} / {backbone} / init {init}", xlabel="target sparsity (%)")
        ax.set_ylabel("final test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    _save(fig, path)


def plot_critical_difference(stats: dict, groups: list[list[str]], path: Path) -> None:
    """Pruners on a mean-rank axis (1 = best, on the left); pruners joined by a bar are not
    significantly different (Nemenyi, at the test's alpha); the CD length is drawn on top."""
    plt = _pyplot()
    ranks = stats["mean_ranks"]
    k = len(ranks)
    palette = colours(list(ranks))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * k))
    ax.set_xlim(0.5, k + 2.2)
    ax.set_ylim(-k - 1.5, 2)
    ax.plot([0.5, k + 0.5], [0, 0], color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="black", linewidth=1)
        ax.text(r, 0.35, str(r), ha="center", fontsize=9)
    cd = stats["critical_difference"]
    ax.plot([1, 1 + cd], [1.3, 1.3], color="black", linewidth=2)
    ax.text(1 + cd / 2, 1.5, f"CD = {cd:.2f}", ha="center", fontsize=9)
    for i, (pruner, rank) in enumerate(sorted(ranks.items(), key=lambda x: x[1])):
        y = -1 - i
        ax.plot([rank, rank], [0, y], color=palette[pruner], linewidth=1)
        ax.plot(rank, 0, "o", color=palette[pruner])
        ax.text(k + 0.6, y, f"{pruner} ({rank:.2f})", ha="left", va="center", fontsize=9,
                color=palette[pruner])  # fmt: skip
        ax.plot([rank, k + 0.55], [y, y], color=palette[pruner], linewidth=0.8)
    for j, group in enumerate(groups):
        low, high = min(ranks[g] for g in group), max(ranks[g] for g in group)
        ax.plot([low - 0.05, high + 0.05], [-0.4 - 0.25 * j] * 2, color="black", linewidth=4)
    ax.set_title(
        f"mean rank over {stats['settings']} settings (Friedman p = {stats['p_value']:.3g}; "
        f"bars: no significant difference at alpha = {stats['alpha']})",
        fontsize=9,
    )
    ax.axis("off")
    fig.tight_layout()
    _save(fig, path)
