"""The paper table, rankings, significance and exports on hand-made records with hand-computed
values; published numbers; the table command's answers to bad input."""

import io
import json
import math

import pandas as pd
import pytest

from fggp_repro.collect import load_records, main, report, summarize
from fggp_repro.ranking import cells, cliques, friedman_nemenyi, ranking_table, ranks

# (pruner, target, init, seed, accuracy): pruner B misses 98%, C has one seed at 90%
RUNS = [
    ("A", 0.9, "dense", 1, 90.0), ("A", 0.9, "dense", 2, 92.0), ("A", 0.98, "dense", 1, 70.0),
    ("B", 0.9, "dense", 1, 91.0), ("B", 0.9, "dense", 2, 91.0),
    ("C", 0.9, "dense", 1, 80.0), ("C", 0.98, "dense", 1, 75.0), ("C", 0.98, "dense", 2, 77.0),
    ("dense", 0.0, "n/a", 1, 89.0), ("dense", 0.0, "n/a", 2, 91.0),
]  # fmt: skip


def write_records(root, runs=RUNS, backbone="b"):
    for i, (pruner, target, init, seed, accuracy) in enumerate(runs):
        path = root / f"{backbone}-{i}" / "result.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({
            "status": "completed", "dataset": "synthetic", "backbone": backbone,
            "pruner": pruner, "target_sparsity": target, "init": init, "seed": seed,
            "final_test_acc": accuracy, "achieved_sparsity": target,
            "setting_id": f"{pruner}{target}{init}", "config": {"seed": seed},
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
    table = ranking_table(ranked)
    assert list(table["pruner"]) == ["B", "A", "C"]
    assert list(table["mean_rank"]) == [1.5, 1.75, 2.0]
    assert list(table["settings"]) == [1, 2, 2] and list(table["wins"]) == [1, 1, 1]


EXPECTED_MARKDOWN = """\
| pruner | b 90% dense | b 98% dense |
| --- | --- | --- |
| B | **91.00 ± 0.00** † | – |
| A | **91.00 ± 1.41** † | 70.00 (n=1) |
| C | 80.00 (n=1) | **76.00 ± 1.41** |
| dense | 90.00 ± 1.41 | 90.00 ± 1.41 |

best per setting in bold; † beats dense training; (n=k): fewer seeds than expected
"""


def test_exact_markdown_of_a_small_paper_table(records):
    texts = report(records, ["markdown"], None, None)["texts"]
    assert texts["paper_table.md"] == EXPECTED_MARKDOWN


def test_latex_is_a_balanced_booktabs_table_with_the_best_in_bold(records):
    latex = report(records, ["latex"], None, None)["texts"]["paper_table.tex"]
    body = latex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert latex.count("{") == latex.count("}")
    assert latex.index(r"\toprule") < latex.index(r"\midrule") < latex.index(r"\bottomrule")
    assert all(row.count("&") == 2 and row.endswith(r"\\") for row in body)
    assert r"\textbf{76.00 $\pm$ 1.41}" in latex and "–" in latex


def test_csv_round_trips_through_pandas(records):
    csv = report(records, ["csv"], None, None)["texts"]["paper_table.csv"]
    table = pd.read_csv(io.StringIO(csv))
    assert list(table.columns) == ["pruner", "b 90% dense", "b 98% dense"]
    assert list(table["pruner"]) == ["B", "A", "C", "dense"]
    assert table.loc[2, "b 90% dense"] == "80.00 (n=1)"


def test_friedman_and_nemenyi_match_demsar():
    """3 pruners over 4 settings with ranks (1, 2, 3) three times and (2, 1, 3) once: mean
    ranks 1.25, 1.75, 3; chi2_F = 12 N / (k (k+1)) sum R^2 - 3 N (k+1) = 6.5; the critical
    difference is q_0.05 sqrt(k (k+1) / 6N) with q_0.05 = 2.343 for k = 3 (Demsar's Table 5)."""
    rows = []
    for setting, accuracies in enumerate([(3, 2, 1), (3, 2, 1), (3, 2, 1), (2, 3, 1)]):
        for pruner, accuracy in zip("XYZ", accuracies):
            rows.append({"pruner": pruner, "backbone": "b", "target_sparsity": 0.9,
                         "init": f"i{setting}", "mean": float(accuracy)})  # fmt: skip
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
        "# transcribed\nbackbone,target_sparsity,init,pruner,accuracy,std,source,protocol\n"
        "b,0.9,dense,A,90.5,0.1,paper,fggp_authors\nb,0.0,n/a,dense,92.0,,paper,granet\n"
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
    reference.write_text("backbone,target_sparsity,init,pruner,accuracy,std,source,protocol\n"
                         "b,0.9,dense,A,91.0,,GraNet,granet\n")  # fmt: skip
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
    expected += ["rankings.csv", "rankings.md", "rankings.tex", "significance.json"]
    assert names == expected


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
    from fggp_repro.plots import colours

    alone, together = colours(["gmp"]), colours(["fggp", "gmp", "rigl", "my_new_pruner"])
    assert alone["gmp"] == together["gmp"]
    assert len(set(map(str, together.values()))) == 4
