"""The paper table, rankings, significance and exports on hand-made records with hand-computed
values; datasets kept apart; dense training as an unranked reference of the runs it matches;
tidy numeric CSVs; published numbers, packaged ones by name; the table command's answers to bad
input."""

import io
import json
import math
import re

import pandas as pd
import pytest

from fggp_repro.cli.table import main
from fggp_repro.reporting.collect import load_records, report, significance_line, summarize
from fggp_repro.reporting.ranking import cells, cliques, friedman_nemenyi, ranking_table, ranks
from fggp_repro.reporting.table_figures import accuracy_panels
from fggp_repro.reporting.tables import cost_data, cost_text

# (pruner, target, init, seed, accuracy): pruner B misses 98%, C has one seed at 90%
RUNS = [
    ("A", 0.9, "dense", 1, 90.0), ("A", 0.9, "dense", 2, 92.0), ("A", 0.98, "dense", 1, 70.0),
    ("B", 0.9, "dense", 1, 91.0), ("B", 0.9, "dense", 2, 91.0),
    ("C", 0.9, "dense", 1, 80.0), ("C", 0.98, "dense", 1, 75.0), ("C", 0.98, "dense", 2, 77.0),
    ("dense", 0.0, "n/a", 1, 89.0), ("dense", 0.0, "n/a", 2, 91.0),
]  # fmt: skip


def write_records(root, runs=RUNS, backbone="b", dataset="synthetic", config=None, tag=""):
    """One result.json per run; `config` (the shared part of the runs' configs) and `tag` (a
    suffix of the setting ids) make the runs another configuration of the same settings."""
    for i, (pruner, target, init, seed, accuracy) in enumerate(runs):
        path = root / f"{dataset}-{backbone}{tag}-{i}" / "result.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({
            "status": "completed", "dataset": dataset, "backbone": backbone,
            "pruner": pruner, "target_sparsity": target, "init": init, "seed": seed,
            "final_test_acc": accuracy, "achieved_sparsity": target,
            "setting_id": f"{pruner}{target}{init}{tag}",
            "config": {"seed": seed, **(config or {})},
        }))  # fmt: skip
    return root


@pytest.fixture
def records(tmp_path):
    return load_records(write_records(tmp_path))


def test_means_stds_and_seed_counts(records):
    summary = summarize(records).set_index(["pruner", "target_sparsity"])
    assert summary.loc[("A", 0.9), "acc_mean"] == 91.0
    assert summary.loc[("A", 0.9), "acc_std"] == pytest.approx(math.sqrt(2))  # sample std
    assert summary.loc[("B", 0.9), "acc_std"] == 0.0
    assert summary.loc[("A", 0.98), "seeds"] == 1 and math.isnan(
        summary.loc[("A", 0.98), "acc_std"]
    )


def test_ranks_with_ties_and_missing_cells_mean_rank_and_wins(records):
    ranked = ranks(cells(summarize(records)))
    by = ranked.set_index(["pruner", "target_sparsity"])["rank"]
    # 90%: A and B tie at 91 -> 1.5 each, C 3; 98%: C 76 first, A 70 second, B not ranked
    assert by[("A", 0.9)] == by[("B", 0.9)] == 1.5 and by[("C", 0.9)] == 3
    assert by[("C", 0.98)] == 1 and by[("A", 0.98)] == 2 and ("B", 0.98) not in by
    assert "dense" not in set(ranked["pruner"])  # the reference is marked, not ranked
    # mean ranks over the one setting all three share (90%): B, ranked at 90% only, is not put
    # above A and C on fewer settings (over all its own it would lead with 1.5 against 1.75)
    table = ranking_table(ranked)
    assert list(table["pruner"]) == ["A", "B", "C"]
    assert list(table["mean_rank"]) == [1.5, 1.5, 3.0] and list(table["over"]) == [1, 1, 1]
    assert list(table["settings"]) == [2, 1, 2] and list(table["wins"]) == [1, 1, 1]


def test_pruners_that_share_no_setting_are_ordered_by_how_many_settings_they_have():
    runs = [("A", 0.9, "dense", 1, 91.0), ("B", 0.9, "dense", 1, 93.0),
            ("A", 0.98, "dense", 1, 80.0), ("C", 0.98, "dense", 1, 85.0),
            ("A", 0.95, "dense", 1, 88.0)]  # fmt: skip
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as root:
        records = load_records(write_records(Path(root), runs))
    table = ranking_table(ranks(cells(summarize(records))))
    assert list(table["pruner"]) == ["A", "B", "C"]  # A: 3 settings (ranks 2, 2, 1)
    assert list(table["settings"]) == [3, 1, 1] and list(table["over"]) == [3, 1, 1]


EXPECTED_MARKDOWN = """\
### synthetic
| pruner | b 90% dense | b 98% dense |
| --- | --- | --- |
| A | **91.00 ± 1.41** † | 70.00 (n=1) |
| B | **91.00 ± 0.00** † | – |
| C | 80.00 (n=1) | **76.00 ± 1.41** |
| dense | 90.00 ± 1.41 | 90.00 ± 1.41 |

best per setting in bold; † beats dense training; (n=k): fewer seeds than expected
"""


def test_exact_markdown_of_a_small_paper_table(records):
    texts = report(records, ["markdown"], None, None)["texts"]
    assert texts["paper_table.md"] == EXPECTED_MARKDOWN


def test_a_reference_is_what_its_runs_recorded_not_a_name(tmp_path):
    """A dense variant under a name of its own (one YAML naming Dense) records `reference`:
    it is marked under that name, never ranked."""
    root = write_records(tmp_path, [("dense_long" if p == "dense" else p, *r) for p, *r in RUNS])
    for path in root.rglob("result.json"):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "reference": record["pruner"] == "dense_long"}))
    records = load_records(root)
    assert "dense_long" not in set(ranks(cells(summarize(records)))["pruner"])
    texts = report(records, ["markdown"], None, None)["texts"]
    assert texts["paper_table.md"] == EXPECTED_MARKDOWN.replace("| dense |", "| dense_long |")


def test_latex_is_a_balanced_booktabs_table_with_the_best_in_bold(records):
    latex = report(records, ["latex"], None, None)["texts"]["paper_table.tex"]
    body = latex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert latex.count("{") == latex.count("}")
    assert latex.index(r"\toprule") < latex.index(r"\midrule") < latex.index(r"\bottomrule")
    assert all(row.count("&") == 2 and row.endswith(r"\\") for row in body)
    assert r"\textbf{76.00 $\pm$ 1.41}" in latex and "–" in latex


def test_friedman_and_nemenyi_match_demsar():
    """3 pruners over 4 settings with ranks (1, 2, 3) three times and (2, 1, 3) once: mean
    ranks 1.25, 1.75, 3; chi2_F = 12 N / (k (k+1)) sum R^2 - 3 N (k+1) = 6.5; the critical
    difference is q_0.05 sqrt(k (k+1) / 6N) with q_0.05 = 2.343 for k = 3 (Demsar's Table 5)."""
    rows = []
    for setting, accuracies in enumerate([(3, 2, 1), (3, 2, 1), (3, 2, 1), (2, 3, 1)]):
        for pruner, accuracy in zip("XYZ", accuracies):
            rows.append({"pruner": pruner, "dataset": "d", "backbone": "b", "reference": False,
                         "target_sparsity": 0.9, "init": f"i{setting}",
                         "mean": float(accuracy)})  # fmt: skip
    ranked = ranks(pd.DataFrame(rows))
    stats = friedman_nemenyi(ranked)
    assert stats["mean_ranks"] == {"X": 1.25, "Y": 1.75, "Z": 3.0}
    assert stats["statistic"] == pytest.approx(6.5)
    assert stats["critical_difference"] == pytest.approx(2.343 * math.sqrt(12 / 24), abs=1e-3)
    assert cliques(stats["mean_ranks"], stats["critical_difference"]) == [["X", "Y"], ["Y", "Z"]]


def test_published_numbers_are_compared_cell_by_cell_protocol_by_protocol(tmp_path, capsys):
    root = write_records(tmp_path / "runs")
    reference = tmp_path / "published.csv"
    reference.write_text(
        "# transcribed\ndataset,backbone,target_sparsity,init,pruner,accuracy,std,source,protocol\n"
        "synthetic,b,0.9,dense,A,90.5,0.1,paper,fggp_authors\n"
        "synthetic,b,0.0,n/a,dense,92.0,,paper,granet\n"
        "cifar10,b,0.9,dense,A,10.0,,other dataset,fggp_authors\n"
    )
    main([str(root), "--reference", str(reference)])
    captured = capsys.readouterr()
    assert (
        "| A | b 90% dense | 91.00 | – | 90.50 | +0.50 | fggp_authors / fggp_authors | paper |"
        in (captured.out)
    )
    assert "| dense | b 0% n/a | 90.00 | – | 92.00 | -2.00 | fggp_authors ≠ granet | paper |" in (
        captured.out
    )
    assert "other dataset" not in captured.out  # a cifar10 cell is not synthetic's
    [warning] = [line for line in captured.err.splitlines() if "not like with like" in line]
    assert "1 cell(s) of runs under protocol fggp_authors" in warning and "granet" in warning
    main([str(root), "--reference", str(reference), "--format", "latex"])
    assert r"fggp\_authors $\neq$ granet" in capsys.readouterr().out


def test_best_after_pruning_stands_beside_the_final_accuracy(tmp_path, capsys):
    root = write_records(tmp_path / "runs", runs=[("A", 0.9, "dense", 1, 90.0)])
    path = next(root.rglob("result.json"))
    record = json.loads(path.read_text())
    path.write_text(
        json.dumps({**record, "protocol": "granet", "best_test_acc_after_pruning": 91.5})
    )
    reference = tmp_path / "published.csv"
    reference.write_text("dataset,backbone,target_sparsity,init,pruner,accuracy,std,source,"
                         "protocol\nsynthetic,b,0.9,dense,A,91.0,,GraNet,granet\n")  # fmt: skip
    main([str(root), "--reference", str(reference)])
    captured = capsys.readouterr()
    assert "| A | b 90% dense | 90.00 | 91.50 | 91.00 | -1.00 | granet / granet | GraNet |" in (
        captured.out
    )
    assert "not like with like" not in captured.err


def test_paper_table_tells_the_two_granets_apart(tmp_path, capsys):
    runs = [(p, 0.9, "dense", 1, a) for p, a in (("granet", 90.0), ("mfgn_annealed", 89.0))]
    main([str(write_records(tmp_path / "runs", runs=runs))])
    out = capsys.readouterr().out
    assert 'mfgn_annealed is the FGGP authors\' "GraNet in our framework"' in out
    assert "granet is GraNet's own algorithm" in out


def test_exports_are_written_atomically_into_out(tmp_path, capsys):
    root = write_records(tmp_path / "runs")
    main([str(root), "--format", "markdown", "latex", "csv", "--out", str(tmp_path / "t")])
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    expected = ["accuracy.png", "costs.csv", "costs.md", "costs.tex", "paper_table.csv"]
    expected += ["paper_table.md", "paper_table.tex"]
    expected += ["rankings.csv", "rankings.md", "ranks.png", "rankings.tex", "significance.json"]
    assert names == sorted(expected)  # ranks.png too, where no significance test could run


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "docx"], "invalid choice"),
        (["--reference", "missing.csv"], "no such reference file"),
        (["--reference", "BAD"], "lacks the column"),
    ],
)
def test_bad_table_input_is_one_line_and_changes_nothing(tmp_path, capsys, arguments, message):
    root = write_records(tmp_path / "runs")
    (tmp_path / "BAD").write_text("a,b\n1,2\n")
    arguments = [str(tmp_path / a) if a in ("BAD", "missing.csv") else a for a in arguments]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        main([str(root), *arguments])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_records_without_an_id_are_shown_apart_with_a_warning(tmp_path, capsys):
    root = write_records(tmp_path / "runs")
    old = tmp_path / "runs" / "old" / "result.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"status": "completed", "dataset": "synthetic", "backbone": "b",
                               "pruner": "A", "target_sparsity": 0.9, "init": "dense", "seed": 3,
                               "final_test_acc": 10.0, "achieved_sparsity": 0.9}))  # fmt: skip
    main([str(root)])
    out, err = capsys.readouterr()
    assert "2 configurations" in err and "no-id" in err
    assert "| A [no-id] | 10.00 (n=1) |" in out  # never averaged into A's 91.00


def test_a_pruner_keeps_its_colour_whichever_others_are_drawn():
    from fggp_repro.reporting.table_figures import colours

    alone, together = colours(["gmp"]), colours(["fggp", "gmp", "rigl", "my_new_pruner"])
    assert alone["gmp"] == together["gmp"]
    assert len(set(map(str, together.values()))) == 4


# three seeds each of fggp and gmp on two datasets, 94.0/93.0 on one, 74.0/75.0 on the other;
# dense training of each
TWO_DATASETS = {
    "cifar10": [("fggp", 0.9, "dense", s, a) for s, a in ((1, 93.0), (2, 94.0), (3, 95.0))]
    + [("gmp", 0.9, "dense", s, a) for s, a in ((1, 92.5), (2, 93.0), (3, 93.5))],
    "cifar100": [("fggp", 0.9, "dense", s, a) for s, a in ((1, 73.0), (2, 74.0), (3, 75.0))]
    + [("gmp", 0.9, "dense", s, 75.0) for s in (1, 2, 3)],
}
DENSE = {"cifar10": 95.0, "cifar100": 76.0}
EXPECTED_TWO_DATASETS = """\
### cifar10
| pruner | b 90% dense |
| --- | --- |
| fggp | **94.00 ± 1.00** |
| gmp | 93.00 ± 0.50 |
| dense | 95.00 (n=1) |

### cifar100
| pruner | b 90% dense |
| --- | --- |
| gmp | **75.00 ± 0.00** |
| fggp | 74.00 ± 1.00 |
| dense | 76.00 (n=1) |

best per setting in bold; † beats dense training; (n=k): fewer seeds than expected
"""


def test_two_datasets_under_one_root_are_tabulated_and_ranked_apart(tmp_path):
    for dataset, runs in TWO_DATASETS.items():
        write_records(
            tmp_path, runs=[*runs, ("dense", 0.0, "n/a", 1, DENSE[dataset])], dataset=dataset
        )
    result = report(load_records(tmp_path), ["markdown", "latex"], None, None)
    assert result["texts"]["paper_table.md"] == EXPECTED_TWO_DATASETS
    ranking = result["ranking"].set_index(["dataset", "pruner"])
    assert ranking.loc[("cifar10", "fggp"), "mean_rank"] == 1.0  # never 1.50 across datasets
    assert ranking.loc[("cifar10", "gmp"), "mean_rank"] == 2.0
    assert ranking.loc[("cifar100", "gmp"), "mean_rank"] == 1.0
    assert ranking.loc[("cifar100", "fggp"), "mean_rank"] == 2.0
    assert list(ranking["wins"]) == [1, 0, 1, 0] and list(ranking["settings"]) == [1, 1, 1, 1]
    rankings = result["texts"]["rankings.md"]
    assert rankings.index("### cifar10\n") < rankings.index("### cifar100\n")
    assert "| fggp | 1.00 | 1 | 1 |" in rankings.split("### cifar100")[0]
    assert "| gmp | 1.00 | 1 | 1 |" in rankings.split("### cifar100")[1]
    latex = result["texts"]["paper_table.tex"]
    assert latex.count(r"\begin{tabular}") == 2
    assert "% cifar10\n\\begin{tabular}" in latex and "% cifar100\n\\begin{tabular}" in latex
    panels = {
        key: list(references["mean"]) for key, _, references in accuracy_panels(result["cells"])
    }
    assert panels == {("cifar10", "b", "dense"): [95.0], ("cifar100", "b", "dense"): [76.0]}
    assert list(result["stats"]) == ["cifar10", "cifar100"]  # two pruners: no test, per dataset
    assert significance_line(result["stats"]).splitlines()[1].startswith("cifar100: ")


def test_significance_is_tested_and_drawn_per_dataset(tmp_path):
    """X > Y > Z at both targets of cifar10, Z > Y > X at both of cifar100: pooled, the mean
    ranks would all be 2; per dataset they are 1, 2, 3 over 2 settings each."""
    order = {"cifar10": "XYZ", "cifar100": "ZYX"}
    for dataset, pruners in order.items():
        runs = [
            (p, t, "dense", 1, 90.0 - 5 * i) for i, p in enumerate(pruners) for t in (0.9, 0.98)
        ]
        write_records(tmp_path / "runs", runs=runs, dataset=dataset)
    result = report(load_records(tmp_path / "runs"), ["markdown"], None, None)
    for dataset, pruners in order.items():
        stats = result["stats"][dataset]
        assert stats["settings"] == 2
        assert stats["mean_ranks"] == {pruners[0]: 1.0, pruners[1]: 2.0, pruners[2]: 3.0}
    assert len(significance_line(result["stats"]).splitlines()) == 2
    from fggp_repro.reporting.collect import write_report

    written = write_report(result, tmp_path / "tables")
    assert tmp_path / "tables" / "ranks.png" in written
    saved = json.loads((tmp_path / "tables" / "significance.json").read_text())
    assert sorted(saved) == ["cifar10", "cifar100"]


TRAINED = {"train": {"epochs": 6, "batch_size": 64}, "data": {"name": "synthetic", "root": "a"}}
PRUNED = [("A", 0.9, "dense", 1, 90.0), ("A", 0.9, "dense", 2, 92.0),
          ("B", 0.9, "dense", 1, 89.0), ("B", 0.9, "dense", 2, 89.0)]  # fmt: skip


def test_a_stray_dense_run_is_named_left_out_and_adds_no_column(tmp_path, capsys):
    root = write_records(tmp_path / "runs", runs=PRUNED, config=TRAINED)
    # dense trained like A and B, its data elsewhere on disk: their reference all the same
    elsewhere = {**TRAINED, "data": {"name": "synthetic", "root": "b", "download": True}}
    write_records(root, [("dense", 0.0, "n/a", 1, 90.0)], config=elsewhere, tag="same")
    # dense trained longer: matches nothing here, so it must not be anybody's reference
    longer = {**TRAINED, "train": {"epochs": 10, "batch_size": 64}}
    write_records(root, [("dense", 0.0, "n/a", s, 95.0) for s in (1, 2)], config=longer, tag="x")
    main([str(root)])
    out, err = capsys.readouterr()
    [line] = [line for line in err.splitlines() if line.startswith("left out:")]
    assert line == (
        "left out: dense run(s) of configuration dense0.0n/ax (2 seed(s)) match no setting of "
        "synthetic/b (they differ in: train.epochs)"
    )
    assert "configurations" not in err  # not shown apart from the dense run it left out
    expected = "| A | **91.00 ± 1.41** † |\n| B | 89.00 ± 0.00 |\n| dense | 90.00 (n=1) |\n"
    assert expected in out  # A beats the matching dense (90), not the stray (95)
    assert "95.00" not in out and "dense [" not in out  # in no table at all
    paper_table = out.split("best per setting")[0]
    assert " 0% " not in paper_table and "n/a" not in paper_table
    result = report(load_records(root), ["markdown"], None, None)
    assert result["warnings"] == [line]
    assert list(result["ranking"]["pruner"]) == ["A", "B"]
    [(key, rows, references)] = accuracy_panels(result["cells"])  # what the plot draws
    assert key == ("synthetic", "b", "dense") and set(rows["pruner"]) == {"A", "B"}
    assert list(references["pruner"]) == ["dense"] and list(references["mean"]) == [90.0]


def test_dense_is_never_ranked_even_with_two_dense_configurations(tmp_path):
    """A and B ran 90% for 6 epochs and 98% for 10; dense ran both lengths: each dense run is the
    reference of the runs it was trained like, labelled apart, and ranked nowhere."""
    root = write_records(tmp_path, runs=PRUNED, config=TRAINED, tag="6")
    longer = {**TRAINED, "train": {"epochs": 10, "batch_size": 64}}
    runs = [("A", 0.98, "dense", 1, 80.0), ("B", 0.98, "dense", 1, 70.0)]
    write_records(root, runs=runs, config=longer, tag="10")
    write_records(root, [("dense", 0.0, "n/a", 1, 90.5)], config=TRAINED, tag="d6")
    write_records(root, [("dense", 0.0, "n/a", 1, 93.0)], config=longer, tag="d10")
    result = report(load_records(root), ["markdown"], None, None)
    assert result["warnings"] == [
        "warning: synthetic/b/n/a/0.0/dense has runs of 2 configurations (dense0.0n/ad10, "
        "dense0.0n/ad6), shown apart; they differ in: train.epochs"
    ]
    table = result["texts"]["paper_table.md"]
    assert "| pruner | b 90% dense | b 98% dense |\n" in table  # no 0% column of dense's own
    assert "| A | **91.00 ± 1.41** † | **80.00 (n=1)** |\n" in table
    assert "| dense [dense0.0n/ad10] | – | 93.00 (n=1) |\n" in table
    assert "| dense [dense0.0n/ad6] | 90.50 (n=1) | – |\n" in table
    ranking = result["ranking"]
    assert list(ranking["pruner"]) == ["A", "B"] and list(ranking["mean_rank"]) == [1.0, 2.0]
    assert "dense" not in result["texts"]["rankings.md"]
    cells = result["cells"]
    assert cells.loc[cells["reference"], "rank"].isna().all()
    assert not cells.loc[cells["reference"], "win"].any()
    panels = {key: refs for key, _, refs in accuracy_panels(cells)}
    assert list(panels) == [("synthetic", "b", "dense")]
    assert sorted(panels[("synthetic", "b", "dense")]["pruner"]) == [
        "dense [dense0.0n/ad10]", "dense [dense0.0n/ad6]",
    ]  # fmt: skip


def test_csv_exports_are_tidy_numbers_to_compute_with(tmp_path, capsys):
    root = write_records(tmp_path / "runs")
    reference = tmp_path / "published.csv"
    reference.write_text("dataset,backbone,target_sparsity,init,pruner,accuracy,std,source\n"
                         "synthetic,b,0.9,dense,A,90.5,0.1,paper\n")  # fmt: skip
    out = tmp_path / "t"
    main([str(root), "--format", "csv", "--reference", str(reference), "--out", str(out)])
    texts = {name: (out / f"{name}.csv").read_text() for name in
             ("paper_table", "rankings", "costs", "published")}  # fmt: skip
    for name, text in texts.items():
        assert not any(mark in text for mark in ("±", "**", "†", "–", "(n=")), name
        assert not re.search(r"\.\d{7,}", text), name  # rounded: no 1.4142135623730951
    paper, rankings, costs, published = (pd.read_csv(io.StringIO(t)) for t in texts.values())
    assert list(paper.columns) == [
        "dataset", "backbone", "init", "target_sparsity", "pruner", "mean", "std", "n", "rank",
        "win", "beats_dense", "reference", "protocol",
    ]  # fmt: skip
    assert len(paper) == 7  # A 2, B 1, C 2 cells; dense under both targets
    for column, kind in (("mean", "f"), ("std", "f"), ("n", "i"), ("rank", "f"), ("win", "b"),
                         ("beats_dense", "b"), ("reference", "b")):  # fmt: skip
        assert paper[column].dtype.kind == kind, column
    ranked = paper[~paper["reference"]]
    assert paper.loc[paper["reference"], "rank"].isna().all()
    shared = ranked[ranked["target_sparsity"] == 0.9]  # the one setting all three have
    mean_ranks = shared.groupby("pruner")["rank"].mean()
    assert mean_ranks.to_dict() == {"A": 1.5, "B": 1.5, "C": 3.0}
    assert rankings.set_index("pruner")["mean_rank"].to_dict() == mean_ranks.to_dict()
    assert list(rankings["over"]) == [1, 1, 1] and list(rankings["settings"]) == [2, 1, 2]
    assert list(rankings["wins"]) == [1, 1, 1] and set(rankings["dataset"]) == {"synthetic"}
    assert set(ranked.loc[ranked["beats_dense"], "pruner"]) == {"A", "B"}
    assert ranked["std"].max() == pytest.approx(math.sqrt(2))
    assert costs["accuracy"].sum() == pytest.approx(91 + 70 + 91 + 80 + 76 + 90)
    for column in ("inference_flops_fraction", "training_flops_fraction"):
        assert pd.api.types.is_numeric_dtype(costs[column])
    [row] = published.itertuples()
    assert (row.ours, row.published, row.difference) == (91.0, 90.5, pytest.approx(0.5))
    assert (row.our_protocol, row.published_protocol) == ("fggp_authors", "unknown")


def test_packaged_reference_numbers_are_found_by_name(tmp_path, capsys):
    runs = [("gmp", 0.95, "dense", 1, 94.0)]
    root = write_records(tmp_path / "runs", runs=runs, backbone="resnet50", dataset="cifar10")
    main([str(root), "--reference", "granet"])
    out = capsys.readouterr().out
    assert "| gmp | resnet50 95% dense | 94.00 | – | 94.52 | -0.52 | fggp_authors ≠ granet |" in out
    with pytest.raises(SystemExit) as exit_info:
        main([str(root), "--reference", "nonesuch"])
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "nonesuch" in line and "packaged: granet" in line


# --- figures ---------------------------------------------------------------------------------
#: two layers of 200 and 1800 weights; at 80% sparsity ERK keeps 400: density is proportional to
#: (n_in + n_out) / (n_in n_out), 30/200 and 90/1800, scaled by e with 30 e + 90 e = 400: 0.5 and
#: 1/6 of each layer (100 and 300 weights)
LAYERS = [("features.0.weight", [10, 20]), ("fc.weight", [30, 60])]
TARGETS = {
    "gmp": "fggp_repro.pruners.gmp.GMP",
    "fggp": "fggp_repro.pruners.two_stage.FGGP",
    "granet": "fggp_repro.pruners.granet.GraNet",
    "dense": "fggp_repro.pruners.dense.Dense",
}
#: (pruner, seed): final layer densities, test accuracy at iterations 50 and 100 (evaluated every
#: second epoch), training loss of epochs 1-4 (25 iterations each)
CURVES = {
    ("gmp", 1): ([0.5, 0.1], [50.0, 70.0], [2.0, 1.5, 1.2, 1.0]),
    ("gmp", 2): ([0.3, 0.2], [54.0, 74.0], [2.2, 1.7, 1.4, 1.2]),
    ("fggp", 1): ([0.6, 0.2], [60.0, 80.0], [1.9, 1.4, 1.1, 0.9]),
    ("fggp", 2): ([0.4, 0.2], [62.0, 82.0], [2.1, 1.6, 1.3, 1.1]),
    ("zzz", 1): ([0.2, 0.2], [40.0, 60.0], [2.3, 2.0, 1.8, 1.7]),
    ("aaa", 1): ([0.2, 0.2], [30.0, 50.0], [2.3, 2.0, 1.8, 1.7]),
    ("dense", 1): ([1.0, 1.0], [70.0, 90.0], [1.8, 1.2, 0.8, 0.5]),
}  # fmt: skip
TRAINED_RUNS = [
    (p, 0.8, "dense", s, CURVES[(p, s)][1][-1]) for p in ("gmp", "fggp") for s in (1, 2)
]
TRAINED_RUNS += [("dense", 0.0, "n/a", 1, 90.0)]
#: 100 iterations, a pruning step every 10 until 0.8 x 100: the cubic's n x interval is 80
SCHEDULE = {"interval": 10, "start_iteration": 0, "end_fraction": 0.8}


def add_training(root, curves=CURVES):
    """What a trained run records beyond the table's fields: its layers, its config's pruner and
    schedule, 100 iterations, and a metrics.jsonl, for every record write_records wrote."""
    for path in root.rglob("result.json"):
        record = json.loads(path.read_text())
        densities, accuracies, losses = curves[(record["pruner"], record["seed"])]
        record["per_layer"] = [
            {"name": name, "shape": shape, "numel": shape[0] * shape[1], "density": d}
            for (name, shape), d in zip(LAYERS, densities, strict=True)
        ]
        pruner = {"name": record["pruner"], "_target_": TARGETS.get(record["pruner"], "no.Such")}
        record["config"].update(pruner=pruner, schedule=SCHEDULE)
        record.update(iterations=100, density_base="prunable", params_prunable=2000)
        path.write_text(json.dumps(record))
        epochs = [{"epoch": e, "iteration": 25 * e, "train_loss": loss, "sparsity": 0.1 * e}
                  for e, loss in enumerate(losses, 1)]  # fmt: skip
        for epoch, accuracy in zip(epochs[1::2], accuracies, strict=True):
            epoch["test_acc"] = accuracy
        (path.parent / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
    return root


def trained_report(root):
    from fggp_repro.reporting.run_figures import setting_runs
    from fggp_repro.reporting.table_figures import report_colours

    result = report(load_records(root), ["markdown"], None, None)
    return result, setting_runs(result["cells"], result["runs"]), report_colours(result["cells"])


def lines_by_label(ax) -> dict[str, list[float]]:
    return {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}


def test_layer_density_figure_draws_seed_means_against_erk(tmp_path):
    from fggp_repro.reporting.run_figures import layer_density_figure

    _, settings, colour = trained_report(add_training(write_records(tmp_path, TRAINED_RUNS)))
    assert list(settings) == [("synthetic", "b", 0.8, "dense")]  # dense is no setting of its own
    fig = layer_density_figure("synthetic", settings, colour)
    [ax] = fig.axes
    lines = lines_by_label(ax)
    assert lines["gmp (n=2)"] == pytest.approx([0.4, 0.15])  # (0.5 + 0.3) / 2, (0.1 + 0.2) / 2
    assert lines["fggp (n=2)"] == pytest.approx([0.5, 0.2])
    assert lines["ERK at this target"] == pytest.approx([0.5, 1 / 6])
    assert not any(label.startswith("dense") for label in lines)  # dense is not pruned
    assert ax.get_yscale() == "log" and ax.get_ylabel() and ax.get_xlabel()


def test_erk_reference_is_erk_as_the_masks_draw_it():
    from fggp_repro.reporting.run_figures import erk_reference

    per_layer = [{"name": n, "shape": s, "numel": s[0] * s[1]} for n, s in LAYERS]
    assert erk_reference(per_layer, 0.8) == pytest.approx([0.5, 1 / 6])
    # over 2020 parameters (20 always-active biases): round(0.2 x 2020) - 20 = 384 weights
    # stay, 30 e + 90 e = 384: 96 of 200 and 288 of 1800
    assert erk_reference(per_layer, 0.8, base=2020) == pytest.approx([0.48, 0.16])


def test_training_curves_mean_band_and_the_cubic_schedule(tmp_path):
    from fggp_repro.reporting.run_figures import (
        curve,
        curves_figure,
        run_metrics,
        schedule_sparsity,
    )

    result, settings, colour = trained_report(add_training(write_records(tmp_path, TRAINED_RUNS)))
    [(setting, runs)] = settings.items()
    accuracy, loss, sparsity = curves_figure(setting, runs, colour).axes
    [gmp] = [c for c in accuracy.containers if c.get_label() == "gmp (n=2)"]
    assert list(gmp.lines[0].get_ydata()) == [52.0, 72.0]  # evaluated at iterations 50, 100 only
    assert list(gmp.lines[0].get_xdata()) == pytest.approx([50, 100], abs=2)  # nudged apart
    assert lines_by_label(loss)["gmp (n=2)"] == pytest.approx([2.1, 1.6, 1.3, 1.1])
    band = curve(run_metrics(runs[runs["label"] == "gmp"]), "train_loss")
    assert list(band["min"]) == [2.0, 1.5, 1.2, 1.0] and list(band["max"]) == [2.2, 1.7, 1.4, 1.2]
    assert lines_by_label(loss)["dense (n=1)"] == [1.8, 1.2, 0.8, 0.5]  # the reference, in grey
    assert not any(label.startswith("dense") for label in lines_by_label(sparsity))
    # s_t = s_f + (s_i - s_f) (1 - t / (n dt))^3 with s_i = 0, s_f = 0.8, n dt = 80, drawn once
    # for the pruners that share it, in black
    [schedule] = [line for line in sparsity.get_lines()
                  if line.get_label() == "cubic schedule of fggp, gmp"]  # fmt: skip
    assert schedule.get_color() == "black" and schedule.get_drawstyle() == "steps-post"
    at = dict(zip(schedule.get_xdata(), schedule.get_ydata(), strict=True))
    assert at[20] == pytest.approx(100 * (0.8 - 0.8 * 0.75**3))
    assert at[60] == pytest.approx(100 * (0.8 - 0.8 * 0.25**3))
    assert at[80] == at[100] == pytest.approx(80.0)
    granet = result["runs"].iloc[0].copy()
    granet["config"] = {"pruner": {"_target_": TARGETS["granet"], "end_fraction": 0.5},
                        "schedule": SCHEDULE}  # fmt: skip
    iterations, values = schedule_sparsity(granet)  # its own window overrides the schedule's
    assert iterations[-2:] == [50, 100] and values[-2] == values[-1] == pytest.approx(0.8)


def test_the_sparsity_is_drawn_at_every_step_from_the_records_mask_changes(tmp_path):
    """gmp's seeds changed their masks at iterations 0, 10, 30 (seed 1) and 0, 10, 20 (seed 2):
    the mean is held between changes, to the last iteration; records without changes (fggp's)
    show epoch ends only, as markers that no line joins."""
    from fggp_repro.reporting.run_figures import curves_figure

    root = add_training(write_records(tmp_path, TRAINED_RUNS))
    histories = {1: [[0, 0.0], [10, 0.4], [30, 0.8]], 2: [[0, 0.0], [10, 0.2], [20, 0.6]]}
    for path in root.rglob("result.json"):
        record = json.loads(path.read_text())
        if record["pruner"] == "gmp":
            record["sparsity_history"] = histories[record["seed"]]
            path.write_text(json.dumps(record))
    _, settings, colour = trained_report(root)
    [(setting, runs)] = settings.items()
    sparsity = curves_figure(setting, runs, colour).axes[2]
    [gmp] = [line for line in sparsity.get_lines() if line.get_label() == "gmp (n=2)"]
    assert gmp.get_drawstyle() == "steps-post"
    assert list(gmp.get_xdata()) == [0, 10, 20, 30, 100]
    assert list(gmp.get_ydata()) == pytest.approx([0.0, 30.0, 50.0, 70.0, 70.0])
    [fggp] = [line for line in sparsity.get_lines() if line.get_label().startswith("fggp (n=2)")]
    assert fggp.get_linestyle() == "None" and "at epoch ends" in fggp.get_label()


def test_two_configurations_of_one_pruner_stay_apart_in_the_figures(tmp_path):
    from fggp_repro.reporting.run_figures import curves_figure, layer_density_figure

    gmp = [run for run in TRAINED_RUNS if run[0] == "gmp"]
    add_training(write_records(tmp_path / "a", gmp, tag="a"))
    other = {key: ([0.1, 0.3], *rest) for key, (_, *rest) in CURVES.items()}
    add_training(write_records(tmp_path / "b", gmp, tag="b"), other)
    _, settings, colour = trained_report(tmp_path)
    [(setting, runs)] = settings.items()
    lines = lines_by_label(layer_density_figure("synthetic", settings, colour).axes[0])
    assert lines["gmp [gmp0.8densea] (n=2)"] == pytest.approx([0.4, 0.15])
    assert lines["gmp [gmp0.8denseb] (n=2)"] == pytest.approx([0.1, 0.3])  # never the average
    assert colour["gmp [gmp0.8densea]"] != colour["gmp [gmp0.8denseb]"]
    loss = curves_figure(setting, runs, colour).axes[1]
    assert sorted(lines_by_label(loss)) == ["gmp [gmp0.8densea] (n=2)", "gmp [gmp0.8denseb] (n=2)"]


def test_accuracy_targets_are_categories_and_panels_share_the_accuracy_axis(tmp_path):
    from fggp_repro.reporting.table_figures import accuracy_figure, report_colours

    runs = [(p, t, i, s, a + 10 * (i == "sparse50")) for p, t, i, s, a in RUNS[:8]
            for i in ("dense", "sparse50")]  # fmt: skip
    result = report(load_records(write_records(tmp_path, runs)), ["markdown"], None, None)
    fig = accuracy_figure(result["cells"], report_colours(result["cells"]))
    left, right = fig.axes
    assert left.get_ylim() == right.get_ylim()  # 70-92 and 80-102 on one axis
    for ax in (left, right):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["90%", "98%"]
        for container in ax.containers:  # one per pruner: markers and bars, never joined
            data = container.lines[0]
            assert data.get_linestyle() == "None"
            assert all(abs(x - round(x)) < 0.3 and round(x) in (0, 1) for x in data.get_xdata())
    assert {c.get_label() for c in left.containers} == {"A (n=1–2)", "B (n=2)", "C (n=1–2)"}
    assert "±1 std over the n seeds" in fig.get_suptitle()


def test_tied_pruners_keep_visible_markers_on_the_rank_axis(tmp_path):
    from fggp_repro.reporting.table_figures import plot_critical_difference

    stats = {"d": {"mean_ranks": {"X": 1.5, "Y": 2.25, "Z": 2.25}, "critical_difference": 1.0,
                   "settings": 4, "p_value": 0.5, "alpha": 0.05}}  # fmt: skip
    fig = plot_critical_difference(stats, {"d": [["Y", "Z"]]}, tmp_path / "ranks.png")
    [ax] = fig.axes
    markers = [(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.get_lines()
               if line.get_marker() == "o"]  # fmt: skip
    assert len(markers) == 3 and len(set(markers)) == 3
    assert sorted(x for x, _ in markers) == [1.5, 2.25, 2.25]
    assert "lower is better" in ax.get_title()


def colours_drawn(fig, name: str) -> set[tuple]:
    """The colours of the lines, error bars and texts labelled `name (...)` in a figure."""
    from matplotlib.colors import to_rgba

    found = set()
    for ax in fig.axes:
        found |= {line.get_color() for line in ax.get_lines() if line.get_label().startswith(name)}
        found |= {c.lines[0].get_color() for c in ax.containers if c.get_label().startswith(name)}
        found |= {text.get_color() for text in ax.texts if text.get_text().startswith(name)}
    return {to_rgba(colour) for colour in found}


def test_a_pruner_has_one_colour_in_every_figure(tmp_path, monkeypatch):
    """zzz and aaa are no pruners of the fixed palette; aaa ran one target of three, too few to
    be ranked: a figure choosing its colours from its own pruners would give zzz aaa's."""
    import fggp_repro.reporting.run_figures
    import fggp_repro.reporting.table_figures
    from fggp_repro.reporting.collect import write_report

    runs = [(p, t, "dense", 1, CURVES[(p, 1)][1][-1] + 100 * t) for p in ("gmp", "fggp", "zzz")
            for t in (0.8, 0.9, 0.95)] + [("aaa", 0.9, "dense", 1, 50.0)]  # fmt: skip
    result, _, _ = trained_report(add_training(write_records(tmp_path / "runs", runs)))
    drawn = []

    def keep(fig, path):  # what write_report draws, kept to look at (writing PNGs is slow)
        drawn.append((path.name, fig))
        fggp_repro.reporting.table_figures.pyplot().close(fig)

    monkeypatch.setattr(fggp_repro.reporting.table_figures, "save", keep)
    monkeypatch.setattr(fggp_repro.reporting.run_figures, "save", keep)
    write_report(result, tmp_path / "tables")
    assert sorted(name for name, _ in drawn) == [
        "accuracy.png", "layer_density_synthetic.png", "ranks.png", "synthetic_b_s0.8_dense.png",
        "synthetic_b_s0.95_dense.png", "synthetic_b_s0.9_dense.png",
    ]  # fmt: skip
    for pruner in ("gmp (", "zzz ("):
        seen = [colours_drawn(fig, pruner) for _, fig in drawn]
        assert all(len(colours) == 1 for colours in seen), pruner  # drawn, in one colour
        assert len(set.union(*seen)) == 1, pruner


def test_the_cost_table_tells_a_fallback_run_from_a_fast_one(tmp_path):
    root = write_records(tmp_path / "runs", runs=[("A", 0.9, "dense", 1, 90.0),
                                                  ("A", 0.9, "dense", 2, 91.0)])  # fmt: skip
    paths = {1: ("cuda_graph", 24000.0, 2.5), 2: ("cuda_graph→eager", 6000.0, 9.0)}
    for path in root.rglob("result.json"):
        record = json.loads(path.read_text())
        step_path, rate, wall = paths[record["seed"]]
        record.update(step_path=step_path, images_per_second=rate, wall_seconds_per_epoch=wall)
        path.write_text(json.dumps(record))
    summary = summarize(load_records(root))
    text = cost_text(summary, "markdown")
    assert "cuda_graph, cuda_graph→eager" in text and "15,000" in text and "5.75" in text
    data = cost_data(summary)
    assert data.loc[0, "step_path"] == "cuda_graph, cuda_graph→eager"
    assert data.loc[0, "images_per_second"] == 15000.0


def test_writing_the_tables_also_prints_them(tmp_path, capsys):
    root = write_records(tmp_path / "runs")
    main([str(root), "--out", str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert "| pruner | b 90% dense | b 98% dense |" in out and "| pruner | mean rank |" in out
    assert f"written: {tmp_path / 't' / 'paper_table.md'}" in out
