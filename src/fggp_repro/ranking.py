"""The paper's comparison as pure functions of a summary table: one cell per pruner and setting
(backbone x target sparsity x initial state), ranks per setting, mean ranks and wins, and the
Friedman test with the Nemenyi critical difference (Demsar, JMLR 2006).

Methods without an initial state (dense, RigL, SET, SNIP, GraSP, SynFlow; init "n/a") appear
under both initial-state columns with the same cell, and are ranked in each like any other
method. Dense training appears under every target too, as the reference: it is marked, not
ranked. A pruner's mean rank is taken over the settings where it has a completed cell; how many
that is stands beside it.
"""

from __future__ import annotations

import math

import pandas as pd

INITS = ("dense", "sparse50")
REFERENCE = "dense"
SETTING_COLUMNS = ["backbone", "target_sparsity", "init"]


def cells(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (pruner, backbone, target, init) cell, with mean, std and n over seeds:
    init-free methods copied to both initial states, dense to every target of its backbone."""
    rows = []
    targets = sorted(t for t in summary["target_sparsity"].unique() if t > 0)
    inits_run = [i for i in INITS if i in set(summary["init"])] or ["dense"]
    for _, row in summary.iterrows():
        inits = inits_run if row["init"] == "n/a" else (row["init"],)
        row_targets = targets if row["pruner"] == REFERENCE else (row["target_sparsity"],)
        for init in inits:
            for target in row_targets:
                rows.append({
                    "pruner": row["pruner"], "backbone": row["backbone"],
                    "target_sparsity": target, "init": init, "mean": row["acc_mean"],
                    "std": row["acc_std"], "n": int(row["seeds"]),
                })  # fmt: skip
    return pd.DataFrame(rows, columns=["pruner", *SETTING_COLUMNS, "mean", "std", "n"])


def ranks(table: pd.DataFrame) -> pd.DataFrame:
    """Rank of each ranked pruner in each setting: 1 is the best mean accuracy, ties share the
    average rank, only pruners with a cell there are ranked."""
    ranked = table[table["pruner"] != REFERENCE].copy()
    ranked["rank"] = ranked.groupby(SETTING_COLUMNS)["mean"].rank(ascending=False, method="average")
    best = ranked.groupby(SETTING_COLUMNS)["mean"].transform("max")
    ranked["win"] = ranked["mean"] == best
    return ranked


def ranking_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """Mean rank over the settings each pruner has, the number of those settings, and wins
    (settings where it has the best mean, shared on ties); sorted by mean rank."""
    table = ranked.groupby("pruner").agg(
        mean_rank=("rank", "mean"), settings=("rank", "size"), wins=("win", "sum")
    )
    return table.sort_values(["mean_rank", "pruner"]).reset_index()


def friedman_nemenyi(ranked: pd.DataFrame, alpha: float = 0.05) -> dict | None:
    """Friedman's test over the settings where every compared pruner has a cell (pruners missing
    from most settings are dropped first), and the Nemenyi critical difference of mean ranks.
    None when fewer than 3 pruners or 2 settings remain."""
    from scipy import stats

    matrix = ranked.pivot_table(index=SETTING_COLUMNS, columns="pruner", values="mean")
    keep = matrix.notna().sum() >= matrix.shape[0] / 2
    matrix = matrix.loc[:, keep].dropna()
    k, n = matrix.shape[1], matrix.shape[0]
    if k < 3 or n < 2:
        return None
    statistic, p_value = stats.friedmanchisquare(*(matrix[c] for c in matrix.columns))
    mean_ranks = matrix.rank(axis=1, ascending=False, method="average").mean()
    q_alpha = stats.studentized_range.ppf(1 - alpha, k, math.inf) / math.sqrt(2)
    critical_difference = q_alpha * math.sqrt(k * (k + 1) / (6 * n))
    return {
        "pruners": list(matrix.columns), "settings": n, "statistic": float(statistic),
        "p_value": float(p_value), "alpha": alpha, "critical_difference": critical_difference,
        "mean_ranks": mean_ranks.sort_values().to_dict(),
    }  # fmt: skip


def cliques(mean_ranks: dict[str, float], critical_difference: float) -> list[list[str]]:
    """Maximal groups of pruners whose mean ranks lie within the critical difference of each
    other (the bars of a critical-difference diagram), in rank order."""
    names = sorted(mean_ranks, key=mean_ranks.get)
    groups: list[list[str]] = []
    for i, first in enumerate(names):
        group = [m for m in names[i:] if mean_ranks[m] - mean_ranks[first] <= critical_difference]
        if len(group) > 1 and not any(set(group) <= set(g) for g in groups):
            groups.append(group)
    return groups
