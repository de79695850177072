"""The command line end to end on synthetic data: its record and run directory, run identity,
sweeps, and its answers to bad input (one line, non-zero exit, nothing written or lost)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FAST, REPO, run_cli, spec

from fggp_repro.cli import main as cli
from fggp_repro.cli.table import main as table_main
from fggp_repro.foundations.errors import ConfigError
from fggp_repro.runs.identity import run_id, setting_id

REQUIRED = {
    "backbone", "pruner", "target_sparsity", "init", "seed", "dataset", "final_test_acc",
    "achieved_sparsity", "achieved_sparsity_conv_linear", "per_layer", "params_total",
    "params_prunable", "params_conv_linear", "epochs", "train_seconds", "images_per_second",
    "status", "config", "package_version", "git_commit", "torch_version", "device_name",
    "run_id", "setting_id", "density_base",
}  # fmt: skip


def record_files(root: Path) -> list[Path]:
    return sorted(root.rglob("result.json"))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def fggp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    args = [*FAST, "pruner=fggp", "sparsity=0.9", "init=sparse50", "seed=3", f"output_root={root}"]
    old_umask = os.umask(0o022)
    try:
        result = run_cli(*args)
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    return root, args


@pytest.mark.slow
def test_cli_writes_a_complete_record_in_a_config_derived_directory(fggp_run):
    root, args = fggp_run
    [path] = record_files(root)
    record = json.loads(path.read_text())
    assert path.parent.parent == root / "synthetic/vgg_tiny/fggp/s0.9/sparse50"
    assert path.parent.name == f"seed3-{record['run_id']}"
    assert record["run_id"] == run_id(spec(*args))
    assert record.keys() >= REQUIRED
    assert record["status"] == "completed"
    assert (record["backbone"], record["pruner"], record["init"]) == (
        "vgg_tiny",
        "fggp",
        "sparse50",
    )
    assert (record["target_sparsity"], record["seed"], record["dataset"]) == (0.9, 3, "synthetic")
    assert record["synthetic_data"] is True
    active = sum(layer["active"] for layer in record["per_layer"])
    # the authors' density base (the default): vgg_tiny's conv/linear parameters are all but its
    # 2 x 240 BN ones; the 3 x 16 x 9 first-conv weights and 250 biases are never pruned
    base = record["params_conv_linear"]
    assert base == record["params_total"] - 2 * (16 + 32 + 64 + 64 + 64)
    assert base - record["params_prunable"] == 3 * 16 * 9 + (16 + 32 + 64 + 64 + 64 + 10)
    assert active == round(0.1 * base) - (base - record["params_prunable"])
    assert record["achieved_sparsity"] == pytest.approx(1 - active / record["params_prunable"])
    assert record["achieved_sparsity_conv_linear"] == pytest.approx(0.9, abs=1 / base)
    assert record["achieved_sparsity"] > 0.9
    assert record["config"]["pruner"]["rate"] == 0.5
    assert record["epochs"] == 2 and record["images_per_second"] > 0
    metrics = (path.parent / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in metrics] == [1, 2]
    assert "test_acc" in json.loads(metrics[-1])
    assert not (path.parent / "checkpoints").exists()  # removed once the run completed
    saved = torch.load(path.parent / "model.pt", weights_only=True)
    assert sum(int(m.sum()) for m in saved["masks"]) == active
    for name in ("result.json", "model.pt", "metrics.jsonl"):
        assert (path.parent / name).stat().st_mode & 0o777 == 0o644  # umask 022, like neighbours


@pytest.mark.slow
def test_completed_run_is_kept_not_retrained(fggp_run):
    root, args = fggp_run
    before = tree(root)
    result = run_cli(*args)
    assert result.returncode == 0 and "already completed" in result.stdout
    assert tree(root) == before


@pytest.mark.slow
def test_another_config_is_a_new_run_and_the_table_keeps_them_apart(fggp_run, tmp_path, capsys):
    root, args = fggp_run
    work = tmp_path / "runs"
    shutil.copytree(root, work)
    before = tree(work)
    other = [a for a in args if not a.startswith("output_root")] + [f"output_root={work}"]
    result = run_cli(*other, "pruner.rate=0.3")
    assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in record_files(work)]
    assert len(records) == 2 and records[0]["run_id"] != records[1]["run_id"]
    assert {k: v for k, v in tree(work).items() if k in before} == before  # first run untouched
    table_main([str(work)])
    out, err = capsys.readouterr()
    assert "2 configurations" in err and "pruner.rate" in err
    paper_table = out.split("\n\n")[0]
    assert paper_table.count("| fggp [") == 2  # two methods of the table, never one average


def test_identity_ignores_only_what_cannot_change_the_result():
    base = spec(*FAST, "pruner=gmp")
    same = spec(*FAST, "pruner=gmp", "output_root=elsewhere", "train.progress=true",
                   "train.device=cpu", "train.eval_every=1", "skip_completed=false",
                   "checkpoint.every=3")  # fmt: skip
    assert run_id(same) == run_id(base)
    for change in ("optim.lr=0.05", "train.epochs=3", "schedule.interval=3", "seed=2",
                   "train.bf16=true", "masking.density_base=prunable"):  # fmt: skip
        assert run_id(spec(*FAST, "pruner=gmp", change)) != run_id(base), change
    assert setting_id(spec(*FAST, "pruner=gmp", "seed=2")) == setting_id(base)
    # dense has no target: one run whatever `sparsity` says
    assert run_id(spec(*FAST, "pruner=dense", "sparsity=0.9")) == run_id(
        spec(*FAST, "pruner=dense", "sparsity=0.98")
    )


@pytest.mark.slow
def test_run_id_is_the_same_in_another_process_and_hash_seed():
    code = (
        "import sys; sys.path.insert(0, 'tests'); from conftest import spec;"
        "from fggp_repro.runs.identity import run_id;"
        f"print(run_id(spec(*{FAST!r}, 'pruner=fggp')))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env=env, check=True).stdout.strip()  # fmt: skip
    assert out == run_id(spec(*FAST, "pruner=fggp")) and len(out) == 10


@pytest.mark.slow
def test_sweep_over_pruners_and_dense_record(tmp_path):
    result = run_cli(
        "--multirun", *FAST, "pruner=dense,gmp", "sparsity=0.95,0.9", f"output_root={tmp_path}",
        "masking.density_base=prunable",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = {(r["pruner"], r["target_sparsity"]): r for r in map(json.loads, (
        p.read_text() for p in record_files(tmp_path)))}  # fmt: skip
    assert sorted(records) == [("dense", 0.0), ("gmp", 0.9), ("gmp", 0.95)]  # dense ran once
    dense, gmp = records["dense", 0.0], records["gmp", 0.95]
    assert (dense["init"], dense["achieved_sparsity"]) == ("n/a", 0.0)
    assert dense["reference"] is True and gmp["reference"] is False
    active = sum(layer["active"] for layer in gmp["per_layer"])
    assert active == round(0.05 * gmp["params_prunable"])  # exact over the prunable weights
    assert "sweep of 3 run(s): 3 completed" in result.stdout


@pytest.mark.slow
def test_failed_jobs_are_summarised_from_disk_under_joblib(tmp_path):
    result = run_cli(
        "--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *FAST,
        "pruner=gmp", "sparsity=0.9", "optim.lr=0.1,1e30", f"output_root={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 1
    assert "sweep of 2 run(s): 1 completed, 1 failed" in result.stderr
    failed_line = next(line for line in result.stderr.splitlines() if "failed:" in line)
    assert "TrainingDiverged" in failed_line


def bad_input_table() -> dict[str, tuple[list[str], str]]:
    """docs/bad-input.md's table: mistake -> (arguments, what the one line says)."""
    rows = {}
    text = (REPO / "docs" / "bad-input.md").read_text()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith("`"):
            continue
        mistake, arguments, says = cells
        rows[mistake] = (arguments.strip("`").split(), says.strip("`"))
    return rows


BAD_INPUT = bad_input_table()
#: refused inside Hydra's app (a sweep, or a check that needs the network): a process of its own
IN_A_PROCESS = ("--multirun", "sparsity=0.9999")


def in_a_process(arguments: list[str]) -> bool:
    return any(a in IN_A_PROCESS or a.endswith(IN_A_PROCESS[1]) for a in arguments)


@pytest.mark.parametrize("case", [
    pytest.param(case, marks=pytest.mark.slow if in_a_process(BAD_INPUT[case][0]) else ())
    for case in BAD_INPUT
], ids=list(BAD_INPUT))  # fmt: skip
def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, case, monkeypatch, capsys):
    arguments, says = BAD_INPUT[case]
    if "train.device=cuda" in arguments and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    if "logger=wandb" in arguments:  # whatever W&B login the developer's machine has
        monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
        monkeypatch.delenv("WANDB_API_KEY", raising=False)
    own_data = any(a.startswith("data=") for a in arguments)
    base = [a for a in FAST if not (own_data and a.startswith("data."))]
    args = [*base, *arguments, f"output_root={tmp_path}/out"]
    if in_a_process(arguments):
        result = run_cli(*args, cwd=tmp_path)
        code, out, err = result.returncode, result.stdout, result.stderr
    else:  # refused before Hydra starts: the same main(), in this process (no start-up cost)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["fggp-repro", *args])
        with pytest.raises(SystemExit) as exit_:
            cli.main()
        (out, err), code = capsys.readouterr(), exit_.value.code
    lines = err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("fggp-repro: error: "), err
    assert says in lines[0]
    assert "full_key" not in lines[0] and "reference_type" not in lines[0]  # OmegaConf's internals
    assert "Traceback" not in out + err
    assert list(tmp_path.iterdir()) == []


def test_the_bad_input_table_covers_every_kind_the_tool_refuses():
    assert len(BAD_INPUT) >= 38 and all(says for _, says in BAD_INPUT.values())


def test_an_interpolated_run_dir_is_checked_up_to_the_directory_it_is_made_in(tmp_path):
    (tmp_path / "run").touch()  # a file named like the start of the directory Hydra will make
    checked = cli.preflight(
        [*FAST, f"hydra.run.dir={tmp_path}/run${{now:%H}}", f"output_root={tmp_path}/out"]
    )
    assert checked.needs_run and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_fixed_part_of_a_run_dir_is_a_whole_directory():
    assert cli.fixed_directory("out/run${now:%H}") == "out/"
    assert cli.fixed_directory("/a/${now:%H}/b") == "/a/"
    assert cli.fixed_directory("run${now:%H}") == ""  # made in the working directory
    assert cli.fixed_directory("/a/b") == "/a/b"


def test_hints_come_from_the_chosen_pruners_own_options():
    from fggp_repro.cli.config import unknown_key_hint

    assert "pruner.rate" not in unknown_key_hint("pruner.drop_fraction", ["pruner=granet"])
    assert unknown_key_hint("pruner.rate", ["pruner=gmp"]).startswith("unknown key 'pruner.rate'")
    assert unknown_key_hint("pruner.rate", ["pruner=fggp"]) == "set it with pruner.rate=<value>"


def test_empty_output_root_is_refused_not_the_filesystem_root():
    with pytest.raises(ConfigError, match="output_root is empty"):
        spec(*FAST, "output_root=")


def test_an_option_without_effect_is_not_part_of_the_run_id():
    fixed, annealed = ("pruner=fggp",), ("pruner=fggp_annealed",)
    assert run_id(spec(*fixed)) == run_id(spec(*fixed, "pruner.final_rate=0.1"))
    assert run_id(spec(*annealed)) != run_id(spec(*annealed, "pruner.final_rate=0.1"))


CHECK_WITHOUT_TORCH = """
import sys
from omegaconf import OmegaConf
from fggp_repro.cli.main import main
from fggp_repro.cli.config import CONF_DIR
from fggp_repro.foundations.spec import locate

for group in ("pruner", "backbone", "data", "logger"):
    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        assert locate(OmegaConf.load(path)._target_).options
for bad in (["pruner.rate=2"], ["backbone=resnet50", "backbone.base_width=0"]):
    sys.argv = ["fggp-repro", *bad]
    try:
        main()
    except SystemExit as refused:
        assert refused.code == 2
sys.exit(sorted(m for m in sys.modules if m.partition(".")[0] in ("torch", "torchvision")) or 0)
"""


def test_reading_every_plugins_options_and_refusing_a_bad_one_leaves_torch_unloaded():
    """A refusal costs a third of a second, not the second or more of importing torch: plugin
    modules import torch inside the functions that use it."""
    result = subprocess.run([sys.executable, "-c", CHECK_WITHOUT_TORCH], timeout=60, text=True,
                            capture_output=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("fggp-repro: error: ") == 2


def test_set_that_never_updates_is_refused_like_gmp():
    with pytest.raises(ConfigError, match="pruner=set: its mask would never change"):
        spec(*FAST[:-1], "pruner=set", "schedule.interval=3", "pruner.end_fraction=0.01")
    spec(*FAST[:-1], "pruner=set", "schedule.interval=3")  # 8 steps: updates at 3, 6


@pytest.mark.slow
def test_granet_protocol_run_records_its_headline_figure_apart(tmp_path):
    result = run_cli(
        "experiment=granet_protocol", "backbone=vgg_tiny", "data=synthetic", "data.train_size=200",
        "data.test_size=64", "train.epochs=4", "schedule.interval=1", "pruner=granet",
        "sparsity=0.9", "train.progress=false", f"output_root={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [path] = record_files(tmp_path)
    record = json.loads(path.read_text())
    rows = [json.loads(line) for line in (path.parent / "metrics.jsonl").read_text().splitlines()]
    assert record["protocol"] == "granet" and record["iterations"] == 4 * 2  # 180 images, batch 100
    # the pruning window ends in epoch floor(.6875 x 4) = 2: the best of epochs 3 and 4
    assert record["best_test_acc_after_pruning"] == max(r["test_acc"] for r in rows[2:])
    assert record["best_test_acc_after_pruning_epochs"] == [3, 4]
    assert record["selected_on_test"] == ["best_test_acc_after_pruning"]
    assert record["final_test_acc"] == rows[-1]["test_acc"]
    assert record["per_layer"][0]["density"] < 1  # the first conv is pruned too
    assert record["density_base"] == "prunable"


@pytest.mark.slow
def test_output_root_under_a_file_and_an_offline_download_write_nothing(tmp_path):
    (tmp_path / "file").write_text("keep")
    under_file = run_cli(*FAST, f"output_root={tmp_path}/file/runs")
    download = run_cli(
        "experiment=demo", "data=cifar10", f"data.root={tmp_path}/data", "data.download=true",
        f"output_root={tmp_path}/runs", cwd=tmp_path,
    )  # fmt: skip
    for result in (under_file, download):
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    assert "is a file" in under_file.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
    assert (tmp_path / "file").read_text() == "keep"


@pytest.mark.slow
def test_corrupt_or_foreign_record_is_refused_and_kept(tmp_path):
    args = [*FAST, "pruner=gmp", "sparsity=0.9", f"output_root={tmp_path}"]
    run_dir = tmp_path / "synthetic/vgg_tiny/gmp/s0.9/dense" / f"seed1-{run_id(spec(*args))}"
    run_dir.mkdir(parents=True)
    for content in ('{"status": "compl', '{"status": "completed", "run_id": "0123456789"}'):
        (run_dir / "result.json").write_text(content)
        result = run_cli(*args)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert (run_dir / "result.json").read_text() == content
        assert sorted(p.name for p in run_dir.iterdir()) == ["result.json"]


@pytest.mark.slow
def test_table_refuses_bad_plot_paths_and_runs_that_never_completed(fggp_run, tmp_path, capsys):
    root, _ = fggp_run
    (tmp_path / "file").write_text("")
    for plot in (tmp_path / "file" / "x.png", tmp_path / "x.xyz"):
        with pytest.raises(SystemExit) as exit_info:
            table_main([str(root), "--plot", str(plot)])
        assert exit_info.value.code == 2
    failed = tmp_path / "failed" / "result.json"
    failed.parent.mkdir()
    failed.write_text(json.dumps({"status": "failed", "reason": "x", "seed": 1}))
    with pytest.raises(SystemExit) as exit_info:
        table_main([str(failed.parent), "--plot", str(tmp_path / "p.png")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "none of the 1 run(s)" in err and "Traceback" not in err
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "x.xyz").exists()


@pytest.mark.slow
def test_table_skips_corrupt_records_and_summarises_the_rest(fggp_run, tmp_path, capsys):
    root, _ = fggp_run
    bad = tmp_path / "x" / "result.json"
    bad.parent.mkdir()
    bad.write_text("not json")
    shutil.copytree(root, tmp_path / "good")
    plot = tmp_path / "accuracy.png"
    table_main([str(tmp_path), "--plot", str(plot)])
    out, err = capsys.readouterr()
    assert "skipped: unreadable results file" in err
    assert "fggp" in out and "sparse50" in out and "(n=1)" in out and "+- 0.00" not in out
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert bad.read_text() == "not json"


def test_a_dry_run_without_multirun_plans_its_one_run_and_never_trains(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fggp-repro", *FAST, "hydra.sweeper.dry_run=true",
                                      f"output_root={tmp_path}/out"])  # fmt: skip
    cli.main()
    out = capsys.readouterr().out
    assert "1 run(s): 1 missing; 1 would run" in out and "add --multirun" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_completed_run_whose_metrics_were_deleted_is_kept_and_the_file_named(
    fggp_run, tmp_path, monkeypatch, capsys
):
    from fggp_repro.cli.config import compose_job, describe_error
    from fggp_repro.cli.jobs import plan_jobs
    from fggp_repro.cli.sweep import print_plan

    root, args = fggp_run
    copy = tmp_path / "runs"
    shutil.copytree(root, copy)
    [record] = record_files(copy)
    (record.parent / "metrics.jsonl").unlink()
    args = [*[a for a in args if not a.startswith("output_root=")], f"output_root={copy}"]
    monkeypatch.setattr(sys, "argv", ["fggp-repro", *args])
    cli.main()  # the rerun: kept, not retrained, and the missing file named
    out = capsys.readouterr().out
    assert "already completed" in out and "metrics.jsonl is missing" in out
    jobs, _ = plan_jobs([args], compose_job, describe_error, check_environment=False)
    print_plan(jobs, {})
    assert "completed, but its metrics.jsonl missing" in capsys.readouterr().out
    table_main([str(copy), "--out", str(tmp_path / "tables")])
    err = capsys.readouterr().err
    assert f"{record.parent}: its metrics.jsonl is missing: no training curves for it" in err


@pytest.mark.slow
def test_the_table_takes_one_runs_record_and_refuses_other_files(fggp_run, tmp_path, capsys):
    root, _ = fggp_run
    [record] = record_files(root)
    table_main([str(record)])
    assert "| fggp |" in capsys.readouterr().out
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        table_main([str(tmp_path / "notes.txt")])
    assert exit_info.value.code == 2
    assert "notes.txt is a file: give the folder that holds the runs" in capsys.readouterr().err


def test_a_launcher_that_fails_to_start_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    from types import SimpleNamespace

    from fggp_repro.cli.sweep import run_planned_sweep

    class Refusing:
        def launch(self, job_overrides, initial_job_idx):
            (tmp_path / "out").mkdir()  # as Hydra's launchers make the sweep's folder first
            raise ValueError("n_jobs == 0 in Parallel has no meaning")

    sweeper = SimpleNamespace(
        hydra_context=SimpleNamespace(config_loader=None), grid=[], dry_run=False,
        epoch_seconds={}, launcher=Refusing(),
        config=SimpleNamespace(hydra=SimpleNamespace(sweep=SimpleNamespace(dir=tmp_path / "out"))),
    )  # fmt: skip
    code = run_planned_sweep(sweeper, [*FAST, "seed=1,2", f"output_root={tmp_path}/out"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "the launcher could not run the jobs: ValueError: n_jobs == 0" in err[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["/tmp/a b", "/tmp/résultats", "/tmp/back\\slash", "end\\",
                                   'q"uote', "it's", "/a,b/[c]", 'x\\"y'])  # fmt: skip
def test_a_quoted_value_reads_back_as_it_was(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from fggp_repro.cli.config import hydra_quoted

    override = OverridesParser.create().parse_override(f"key={hydra_quoted(value)}")
    assert override.value() == value


def test_the_run_directory_goes_to_hydra_only_where_nothing_else_sets_it(tmp_path):
    run_dir = tmp_path / "a run" / "seed1-abc"
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    argv = [*FAST, f"output_root={tmp_path}", "--config-dir", str(tmp_path / "conf")]
    given = cli.with_run_directory(argv, run_dir)
    assert given[:1] == [f'hydra.run.dir="{run_dir}"'] and given[1:] == argv  # one block
    mine = [*FAST, f"hydra.run.dir={tmp_path}/mine"]
    assert cli.with_run_directory(mine, run_dir) == mine
    (tmp_path / "conf" / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - demo\nhydra:\n  run:\n    dir: elsewhere\n"
    )
    preset = ["experiment=mine", "--config-dir", str(tmp_path / "conf")]
    assert cli.with_run_directory(preset, run_dir) == preset


def test_a_sweep_gives_each_job_its_directory_only_where_the_subdir_is_the_shipped_one():
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from fggp_repro.cli.sweep import derives_subdir

    shipped = OmegaConf.create({"hydra": {"sweep": {"dir": "out", "subdir": "${run_subdir:}"}}})
    assert derives_subdir(shipped)
    assert not derives_subdir(OmegaConf.create({"hydra": {"sweep": {"subdir": "mine"}}}))
    assert not derives_subdir(SimpleNamespace(hydra=SimpleNamespace()))


def test_a_dry_run_names_the_data_the_runs_need_and_this_machine_lacks(tmp_path, capsys):
    from fggp_repro.cli.config import compose_job, describe_error
    from fggp_repro.cli.jobs import plan_jobs
    from fggp_repro.cli.sweep import print_plan

    args = ["data=cifar10", f"data.root={tmp_path}/nowhere", "data.download=true",
            f"output_root={tmp_path}/out"]  # fmt: skip
    jobs, problems = plan_jobs([args], compose_job, describe_error, check_environment=False)
    assert not problems
    print_plan(jobs, {})
    out = capsys.readouterr().out
    assert "1 run(s): 1 missing; 1 would run" in out
    assert "data missing here: CIFAR-10 not found" in out  # and nothing was downloaded
    assert not (tmp_path / "nowhere").exists()
