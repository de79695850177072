"""The paper's comparison as pure functions of a summary table: one cell per pruner and setting
(dataset x backbone x target sparsity x initial state), ranks per setting, mean ranks and wins
per dataset, and per dataset the Friedman test with the Nemenyi critical difference (Demsar,
JMLR 2006).

Datasets are never mixed: a rank, a mean rank or a test only ever compares cells of one dataset,
since accuracies on CIFAR-10 and CIFAR-100 (say) are not on one scale.

Methods without an initial state (RigL, SET, SNIP, GraSP, SynFlow; init "n/a") appear under both
initial-state columns of their dataset and backbone with the same cell, and are ranked in each
like any other method. Reference rows (dense training, the summary's `reference` column) are
never ranked, whatever their label: each appears only under the settings whose pruned runs it
matches, as the figure to beat. Mean ranks are taken over the settings every ranked pruner of the
dataset has, so that every mean covers the same settings; a pruner missing from some settings is
never placed above the others on fewer of them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import pandas as pd

INITS = ("dense", "sparse50")
SETTING_COLUMNS = ["dataset", "backbone", "target_sparsity", "init"]
CELL_COLUMNS = ["pruner", *SETTING_COLUMNS, "mean", "std", "n", "reference", "protocol"]
CELL_COLUMNS += ["dense_mean"]


def cells(
    summary: pd.DataFrame, matches: Mapping[Hashable, Sequence[Hashable]] | None = None
) -> pd.DataFrame:
    """One row per (pruner, dataset, backbone, target, init) cell, with mean, std and n over seeds.

    Init-free methods are copied to both initial states run on their dataset and backbone. A
    reference row (summary index r) is placed under every setting of the pruned rows
    `matches[r]` names, and nowhere else, so a reference never adds a column of its own; with
    no `matches`, each reference matches every pruned row of its dataset and backbone. Each
    pruned cell carries `dense_mean`, the best mean of the references it matches (NaN if none).
    """
    pruned = summary[~summary["reference"].astype(bool)]
    references = summary[summary["reference"].astype(bool)]
    if matches is None:
        matches = {
            r: list(pruned.index[(pruned["dataset"] == row["dataset"])
                                 & (pruned["backbone"] == row["backbone"])])
            for r, row in references.iterrows()
        }  # fmt: skip
    matched = {r: list(sources) for r, sources in matches.items() if r in references.index}
    dense_mean: dict[Hashable, float] = {}
    for r, sources in matched.items():
        for source in sources:
            dense_mean[source] = _max(
                dense_mean.get(source, math.nan), references.loc[r, "acc_mean"]
            )
    inits_run = {
        key: [i for i in INITS if i in set(rows["init"])] or ["dense"]
        for key, rows in pruned.groupby(["dataset", "backbone"])
    }
    rows, sources_of = [], []
    for label, row in pruned.iterrows():
        run = inits_run[(row["dataset"], row["backbone"])]
        for init in run if row["init"] == "n/a" else (row["init"],):
            rows.append(_cell(row, row["target_sparsity"], init, dense_mean.get(label, math.nan)))
            sources_of.append(label)
    placed = pd.DataFrame(rows, columns=CELL_COLUMNS)
    for r, sources in matched.items():
        settings = placed[[s in sources for s in sources_of]][SETTING_COLUMNS].drop_duplicates()
        for setting in settings.itertuples(index=False):
            rows.append(_cell(references.loc[r], setting.target_sparsity, setting.init, math.nan))
    return pd.DataFrame(rows, columns=CELL_COLUMNS).astype({"reference": bool, "n": int})


def _cell(row: pd.Series, target: float, init: str, dense_mean: float) -> dict:
    return {
        "pruner": row["pruner"], "dataset": row["dataset"], "backbone": row["backbone"],
        "target_sparsity": target, "init": init, "mean": row["acc_mean"],
        "std": row["acc_std"], "n": int(row["seeds"]), "reference": bool(row["reference"]),
        "protocol": row.get("protocol"), "dense_mean": dense_mean,
    }  # fmt: skip


def _max(current: float, value: float) -> float:
    return value if math.isnan(current) else max(current, value)


def ranks(table: pd.DataFrame) -> pd.DataFrame:
    """Rank of each pruned cell in its setting: 1 is the best mean accuracy, ties share the
    average rank, only pruners with a cell there are ranked; reference rows are left out."""
    ranked = table[~table["reference"].astype(bool)].copy()
    ranked["rank"] = ranked.groupby(SETTING_COLUMNS)["mean"].rank(ascending=False, method="average")
    best = ranked.groupby(SETTING_COLUMNS)["mean"].transform("max")
    ranked["win"] = ranked["mean"] == best
    return ranked


def ranking_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: each pruner's mean rank over the settings that every ranked pruner of the
    dataset has (`over`: how many), the settings it has in all, and its wins there (settings
    where it has the best mean, shared on ties); sorted by dataset and mean rank. Where the
    pruners share no setting, each mean is over the pruner's own settings, and pruners with
    more settings come first. Never a rank across datasets."""
    tables = []
    for dataset, rows in ranked.groupby("dataset", sort=True):
        settings = rows.groupby("pruner")[SETTING_COLUMNS].apply(
            lambda cells: set(map(tuple, cells.to_numpy()))
        )
        common = set.intersection(*settings)
        keys = rows[SETTING_COLUMNS].apply(tuple, axis=1)
        shared = rows[keys.isin(common)] if common else rows
        table = shared.groupby("pruner").agg(mean_rank=("rank", "mean"), over=("rank", "size"))
        table["settings"] = rows.groupby("pruner")["rank"].size()
        table["wins"] = rows.groupby("pruner")["win"].sum()
        table = table.reset_index().assign(dataset=dataset)
        if common:
            tables.append(table.sort_values(["mean_rank", "pruner"]))
        else:
            order = ["settings", "mean_rank", "pruner"]
            tables.append(table.sort_values(order, ascending=[False, True, True]))
    columns = ["dataset", "pruner", "mean_rank", "over", "settings", "wins"]
    if not tables:
        return pd.DataFrame(columns=columns)
    table = pd.concat(tables)[columns].astype({"over": int, "settings": int, "wins": int})
    return table.reset_index(drop=True)


def significance(ranked: pd.DataFrame, alpha: float = 0.05) -> dict[str, dict | None]:
    """Friedman and Nemenyi for each dataset on its own (None where the test cannot run)."""
    return {
        str(dataset): friedman_nemenyi(rows, alpha)
        for dataset, rows in ranked.groupby("dataset", sort=True)
    }


def friedman_nemenyi(ranked: pd.DataFrame, alpha: float = 0.05) -> dict | None:
    """Friedman's test over the settings where every compared pruner has a cell (pruners missing
    from most settings are dropped first), and the Nemenyi critical difference of mean ranks.
    None when fewer than 3 pruners or 2 settings remain. Give it one dataset's cells: the
    settings of several datasets would be pooled."""
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
