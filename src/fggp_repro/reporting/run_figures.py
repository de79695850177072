"""What the runs did on their way to the table: how each pruner spread its sparsity over the
layers (against ERK at the same target), and how test accuracy, training loss and sparsity moved
during training (against the cubic schedule each run followed).

Drawn from the report's runs under the labels the tables give them, and placed by the tables'
cells, so a figure shows exactly the tables' settings: two configurations of one pruner in one
setting stay two lines, init-free methods appear under each initial state, and dense training is
drawn only where the tables place it, in the reference colour. Records without per-layer data
or a metrics file are drawn in neither figure.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fggp_repro.foundations.errors import ConfigError
from fggp_repro.foundations.spec import INITIAL_DENSITY, Init, ScheduleSpec, locate
from fggp_repro.pruners.gradual import GradualPruner
from fggp_repro.reporting.ranking import SETTING_COLUMNS
from fggp_repro.reporting.table_figures import pyplot, save, seeds_text, title
from fggp_repro.runs.records import METRICS_FILE
from fggp_repro.sparsity.erk import erk_counts
from fggp_repro.sparsity.masks import active_target
from fggp_repro.sparsity.schedule import CubicSchedule, schedule_window

#: a setting of the tables: dataset, backbone, target sparsity, initial state
Setting = tuple[str, str, float, str]
BAND = "band: min–max over seeds"
CURVES_DIRECTORY = "curves"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def marker(label: str, colour: dict[str, str]) -> str:
    """A label's marker, the same in every figure of a report (the colour mapping names every
    label): lines of equal values still show each of their markers."""
    return MARKERS[sorted(colour).index(label) % len(MARKERS)]


def setting_runs(cells: pd.DataFrame, runs: pd.DataFrame) -> dict[Setting, pd.DataFrame]:
    """The runs behind each setting's cells: those of its pruned cells (an init-free method's
    under every initial state, as in the tables) and of the references the tables place there."""
    out = {}
    for key, here in cells.groupby(SETTING_COLUMNS, sort=True):
        dataset, backbone, target, init = key
        same = (runs["dataset"] == dataset) & (runs["backbone"] == backbone)
        labels = here.loc[~here["reference"], "pruner"]
        pruned = same & ~runs["reference"] & runs["label"].isin(labels)
        pruned &= (runs["target_sparsity"] == target) & runs["init"].isin([init, "n/a"])
        references = same & runs["reference"] & runs["label"].isin(here["pruner"])
        out[key] = runs[pruned | references]
    return out


def base_numel(run: pd.Series) -> int | None:
    """How many parameters the run's densities are measured over (its `density_base`); None
    for its prunable weights."""
    count = run.get("params_conv_linear")
    if run.get("density_base") == "conv_linear" and count is not None and not pd.isna(count):
        return int(count)
    return None


def erk_reference(per_layer: list[dict], target: float, base: int | None = None) -> list[float]:
    """ERK's layer densities at `target` sparsity as the project draws an ERK mask (RigL's, a
    sparse start: MaskSet.init_random_erk): whole-weight counts over the prunable layers, the
    target measured over `base` parameters (the record's density base; None: the prunable
    weights), so the reference sits where RigL's layers would at the same setting."""
    sizes = [layer["numel"] for layer in per_layer]
    total = active_target(1.0 - target, sum(sizes), base or sum(sizes))
    counts = erk_counts([layer["shape"] for layer in per_layer], total)
    return [count / size for count, size in zip(counts, sizes, strict=True)]


@dataclass(frozen=True)
class LayerProfile:
    """One label's layers in a setting: short names in network order, the density of each (the
    mean over `seeds`), and ERK's for the same layers, target and density base."""

    names: list[str]
    density: list[float]
    seeds: int
    erk: list[float]


def layer_profiles(runs: pd.DataFrame) -> dict[str, LayerProfile]:
    """Per pruned label of one setting's runs, from the runs that recorded their layers."""
    out = {}
    for label, rows in runs[~runs["reference"]].groupby("label", sort=True):
        rows = rows[[isinstance(r, list) and bool(r) for r in rows["per_layer"]]]
        if rows.empty:
            continue
        first = rows.iloc[0]
        seeds = [[layer["density"] for layer in r] for r in rows["per_layer"]]
        out[label] = LayerProfile(
            names=[layer["name"].removesuffix(".weight") for layer in first["per_layer"]],
            density=[sum(column) / len(seeds) for column in zip(*seeds, strict=True)],
            seeds=len(seeds),
            erk=erk_reference(first["per_layer"], first["target_sparsity"], base_numel(first)),
        )
    return out


def layer_density_figure(
    dataset: str, settings: dict[Setting, pd.DataFrame], colour: dict[str, str]
) -> Any | None:
    """One panel per setting of `dataset` (rows: backbone and initial state; columns: target):
    each pruner's density per prunable layer in network order, mean over seeds, on a log scale,
    and ERK's at the same target. None when no run of the dataset recorded its layers."""
    panels = {key: layer_profiles(runs) for key, runs in settings.items() if key[0] == dataset}
    panels = {key: profiles for key, profiles in panels.items() if profiles}
    if not panels:
        return None
    rows = sorted({(backbone, init) for _, backbone, _, init in panels})
    columns = sorted({target for _, _, target, _ in panels})
    seeds: dict[str, list[int]] = {}
    for profiles in panels.values():
        for label, profile in profiles.items():
            seeds.setdefault(label, []).append(profile.seeds)
    names = {label: f"{label} ({seeds_text(n)})" for label, n in seeds.items()}
    fig, axes = pyplot().subplots(
        len(rows), len(columns), figsize=(4.6 * len(columns) + 1.0, 3.9 * len(rows) + 1.6),
        squeeze=False, sharey=True, layout="constrained",
    )  # fmt: skip
    for (_, backbone, target, init), profiles in panels.items():
        ax = axes[rows.index((backbone, init))][columns.index(target)]
        _layer_panel(ax, profiles, colour, names)
        ax.set(title=f"{backbone} / {100 * target:g}% sparsity / init {init}")
    for row in range(len(rows)):
        axes[row][0].set_ylabel("density (active / all weights of the layer), log")
        for ax in axes[row]:
            if not ax.has_data():
                ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("prunable layer, network order")
    _figure_legend(fig)
    title(fig, f"{dataset}: density of each prunable layer at the end of training, mean over "
               "seeds\nERK: the density ERK gives each layer at the same target")  # fmt: skip
    return fig


def _layer_panel(
    ax, profiles: dict[str, LayerProfile], colour: dict[str, str], names: dict[str, str]
) -> None:
    """Layers are placed by name, so runs that masked other layers (GraNet's protocol masks the
    first convolution too) line up; each layout of layers gets its own ERK line."""
    longest_first = sorted(profiles.values(), key=lambda p: -len(p.names))
    order = list(dict.fromkeys(name for p in longest_first for name in p.names))
    position = {name: i for i, name in enumerate(order, 1)}
    layouts: dict[tuple, list[str]] = {}
    for label, profile in profiles.items():
        ax.plot(
            [position[n] for n in profile.names],
            profile.density,
            color=colour[label],
            marker=marker(label, colour),
            markerfacecolor="none",
            label=names[label],
        )
        layouts.setdefault((tuple(profile.names), tuple(profile.erk)), []).append(label)
    for i, ((names, erk), labels) in enumerate(layouts.items()):
        name = "ERK at this target" + (f", layers of {', '.join(labels)}" if i else "")
        ax.plot([position[n] for n in names], erk, label=name, color="black", marker="x",
                linestyle=("--", ":", "-.")[i % 3])  # fmt: skip
    ax.set_yscale("log")
    if len(order) <= 16:
        ax.set_xticks(range(1, len(order) + 1), order, rotation=40, ha="right", fontsize="small")
    ax.grid(alpha=0.3)


def _figure_legend(fig) -> None:
    """One legend under the panels, each label once: beside them it would meet the title."""
    handles = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    columns = max(1, min(len(handles), int(fig.get_figwidth() // 3.2)))
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=columns)


def run_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """Every epoch row of each run's metrics file, with the run's `label`, `reference` flag and
    `run` (its path); runs whose file is missing or unreadable add none."""
    rows = []
    for run in runs.itertuples():
        try:
            lines = (Path(run.path).parent / METRICS_FILE).read_text().splitlines()
            epochs = [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError):
            continue
        meta = {"label": run.label, "reference": run.reference, "run": run.path}
        rows += [{**epoch, **meta} for epoch in epochs if isinstance(epoch, dict)]
    return pd.DataFrame(rows)


def curve(metrics: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean, min, max and seed count of `column` at each iteration where it was recorded."""
    if column not in metrics:
        return pd.DataFrame(columns=["iteration", "mean", "min", "max", "count"])
    rows = metrics[metrics[column].notna()]
    grouped = rows.groupby("iteration", sort=True)[column]
    return grouped.agg(["mean", "min", "max", "count"]).reset_index()


def schedule_sparsity(run: pd.Series) -> tuple[list[int], list[float]] | None:
    """The sparsity of the prunable weights that the run's cubic schedule asks for at each of
    its pruning steps (held from iteration 0 and to the end of training), rebuilt from the
    record's config as build_pruner builds it (schedule_window). None for a pruner on no cubic
    schedule, or a record that does not say enough."""
    config = run.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("pruner"), dict):
        return None
    try:
        builder = locate(str(config["pruner"].get("_target_")))
    except ConfigError:
        return None
    total = run.get("iterations")
    gradual = isinstance(builder, type) and issubclass(builder, GradualPruner)
    if not gradual or total is None or pd.isna(total):
        return None
    window = schedule_window(
        {**asdict(ScheduleSpec()), **(config.get("schedule") or {})}, config["pruner"]
    )
    target = 1.0 - run["target_sparsity"]
    try:
        schedule = CubicSchedule.build(
            int(total), INITIAL_DENSITY[Init(run["init"])], target, window["interval"],
            window["start_iteration"], window["end_fraction"],
        )  # fmt: skip
    except ValueError:
        return None
    steps = list(range(schedule.start, schedule.end + 1, schedule.interval))
    iterations = sorted({0, *steps, int(total)})
    layers = run.get("per_layer")
    numel = sum(layer["numel"] for layer in layers) if isinstance(layers, list) else None
    return iterations, [
        prunable_sparsity(schedule.density_at(t), numel, base_numel(run)) for t in iterations
    ]


def prunable_sparsity(density: float, numel: int | None, base: int | None) -> float:
    """The sparsity of `numel` prunable weights when `density` is measured over `base`
    parameters (the pruner's count, active_target); 1 - density without a layer count."""
    if numel is None:
        return 1.0 - density
    return 1.0 - active_target(density, numel, base or numel) / numel


def sparsity_steps(run: pd.Series) -> tuple[list[int], list[float]] | None:
    """The sparsity a run had at every iteration, as steps: at the start, after each mask
    change it recorded, held to the end of training. None for a record without them."""
    history, total = run.get("sparsity_history"), run.get("iterations")
    if not isinstance(history, list) or not history or total is None or pd.isna(total):
        return None
    iterations = [int(t) for t, _ in history] + [int(total)]
    values = [float(s) for _, s in history] + [float(history[-1][1])]
    return iterations, values


def step_band(steps: list[tuple[list[int], list[float]]]) -> pd.DataFrame:
    """Mean, min, max and count of step functions (held from each iteration to the next) at
    every iteration where one of them changes."""
    grid = sorted({t for iterations, _ in steps for t in iterations})
    held = pd.DataFrame({
        i: pd.Series(values, index=iterations).groupby(level=0).last().reindex(grid).ffill()
        for i, (iterations, values) in enumerate(steps)
    })  # fmt: skip
    return pd.DataFrame({
        "iteration": grid, "mean": held.mean(axis=1).to_numpy(),
        "min": held.min(axis=1).to_numpy(), "max": held.max(axis=1).to_numpy(),
        "count": held.count(axis=1).to_numpy(),
    })  # fmt: skip


def curves_figure(setting: Setting, runs: pd.DataFrame, colour: dict[str, str]) -> Any | None:
    """Three panels over the iterations of one setting: test accuracy where it was evaluated,
    training loss, and sparsity; per label the mean over seeds with a min–max band (error bars
    for the accuracy) and a marker of its own; dense training, where it applies, in the
    reference colour. The sparsity is each run's own at every step (from its mask changes),
    and each cubic schedule is drawn once, in black, naming the pruners that follow it.
    Accuracy markers are nudged apart by up to 1% of the iterations, so that runs evaluated at
    the same iteration hide no bar. None when no run has a metrics file."""
    metrics = run_metrics(runs)
    if metrics.empty:
        return None
    dataset, backbone, target, init = setting
    fig, axes = pyplot().subplots(1, 3, figsize=(17, 5.4), sharex=True, layout="constrained")
    accuracy, loss, sparsity = axes
    groups = list(metrics.groupby(["label", "reference"], sort=True))
    nudge = 0.02 * metrics["iteration"].max() / max(len(groups) - 1, 1)
    schedules: dict[tuple, list[str]] = {}
    for i, ((label, reference), rows) in enumerate(groups):
        style = {"color": colour[label], "marker": marker(label, colour)}
        name = f"{label} ({seeds_text([rows['run'].nunique()])})"
        points = curve(rows, "test_acc")
        if not points.empty:
            yerr = [points["mean"] - points["min"], points["max"] - points["mean"]]
            x = points["iteration"] + (i - (len(groups) - 1) / 2) * nudge
            accuracy.errorbar(x, points["mean"], yerr=yerr, capsize=3, label=name, **style)
        _band(loss, curve(rows, "train_loss"), style, name)
        if reference:
            continue
        own = runs[runs["label"] == label]
        _sparsity_line(sparsity, own, rows, {**style, "markerfacecolor": "none"}, name)
        planned = schedule_sparsity(own.iloc[0])
        if planned is not None:
            schedules.setdefault((tuple(planned[0]), tuple(planned[1])), []).append(label)
    for j, ((iterations, values), labels) in enumerate(schedules.items()):
        sparsity.plot(iterations, [100 * v for v in values], color="black", linewidth=1,
                      linestyle=("--", ":", "-.")[j % 3], drawstyle="steps-post",
                      label=f"cubic schedule of {', '.join(labels)}")  # fmt: skip
    accuracy.set(ylabel="test accuracy (%)", title="test accuracy, where evaluated")
    loss.set(ylabel="training loss (mean over the epoch)", title="training loss")
    sparsity.set(ylabel="sparsity of the prunable weights (%)", title="sparsity at every step")
    for ax in axes:
        ax.set_xlabel("iteration (optimizer steps)")
        ax.grid(alpha=0.3)
    _figure_legend(fig)
    title(fig, f"{dataset} / {backbone} / {100 * target:g}% sparsity / init {init}: mean over "
               f"seeds, {BAND}")  # fmt: skip
    return fig


def _sparsity_line(ax, runs: pd.DataFrame, metrics: pd.DataFrame, style: dict, name: str) -> None:
    """A label's sparsity at every step, from its runs' mask changes; records without them
    show the sparsity at epoch ends only, as markers (nothing joins them: it moved between)."""
    steps = [s for s in (sparsity_steps(run) for _, run in runs.iterrows()) if s is not None]
    if not steps:
        measured = curve(metrics, "sparsity")
        ax.plot(measured["iteration"], 100 * measured["mean"], linestyle="none",
                label=f"{name}, at epoch ends", **style)  # fmt: skip
        return
    band = step_band(steps)
    every = max(1, len(band) // 8)  # a few markers tell apart labels on one schedule
    ax.plot(band["iteration"], 100 * band["mean"], drawstyle="steps-post", markevery=every,
            label=name, **style)  # fmt: skip
    ax.fill_between(band["iteration"], 100 * band["min"], 100 * band["max"], step="post",
                    color=style["color"], alpha=0.2)  # fmt: skip


def _band(ax, points: pd.DataFrame, style: dict, label: str) -> None:
    if points.empty:
        return
    ax.plot(points["iteration"], points["mean"], label=label, **style)
    ax.fill_between(
        points["iteration"], points["min"], points["max"], color=style["color"], alpha=0.2
    )


def file_part(text: object) -> str:
    """A name or number as a safe piece of a file name."""
    if isinstance(text, float) and not math.isnan(text):
        text = f"{text:g}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "_"


def write_figures(
    cells: pd.DataFrame, runs: pd.DataFrame, out: Path, colour: dict[str, str]
) -> list[Path]:
    """layer_density_<dataset>.png per dataset, and curves/<dataset>_<backbone>_s<target>_<init>
    .png per setting, for the settings whose runs recorded their layers or metrics."""
    settings = setting_runs(cells, runs)
    written = []
    for dataset in sorted({key[0] for key in settings}):
        fig = layer_density_figure(dataset, settings, colour)
        if fig is not None:
            written.append(out / f"layer_density_{file_part(dataset)}.png")
            save(fig, written[-1])
    for setting, here in settings.items():
        fig = curves_figure(setting, here, colour)
        if fig is not None:
            (out / CURVES_DIRECTORY).mkdir(exist_ok=True)
            dataset, backbone, target, init = map(file_part, setting)
            written.append(out / CURVES_DIRECTORY / f"{dataset}_{backbone}_s{target}_{init}.png")
            save(fig, written[-1])
    return written
