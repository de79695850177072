"""The house keeps its shape: each package imports only from its own layer and the layers below
(docs/architecture.md), the package's top holds subpackages and few modules, no function
outgrows a page, and a record written before the move to subpackages is still found."""

import ast
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, spec

PACKAGE = REPO / "src" / "fggp_repro"
#: bottom to top; a package may import from its own layer and the layers below it
LAYERS = {
    "foundations": 0,
    "sparsity": 1, "pruners": 1,
    "training": 2, "models": 2, "datasets": 2,
    "runs": 3, "loggers": 3,
    "reporting": 4,
    "cli": 5,
}  # fmt: skip
#: imports a layer must not make even downwards: a report reads records, it never trains
FORBIDDEN = {"reporting": {"training", "models", "datasets"}}


def package_of(module: str) -> str | None:
    """`fggp_repro.training.steps` -> "training"; None outside the package or for its top."""
    parts = module.split(".")
    return parts[1] if parts[0] == "fggp_repro" and len(parts) > 1 else None


def imported_modules(source: str) -> list[str]:
    """Every module an import statement names, at any depth (functions included)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def violations(package: str, source: str) -> list[str]:
    """The imports of a module of `package` that reach a higher layer or a forbidden one."""
    found = []
    for module in imported_modules(source):
        target = package_of(module)
        if target is None or target not in LAYERS:
            continue
        if LAYERS[target] > LAYERS[package] or target in FORBIDDEN.get(package, set()):
            found.append(f"{package} imports {module}")
    return found


def modules() -> list[tuple[str, Path]]:
    return [
        (path.relative_to(PACKAGE).parts[0], path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if len(path.relative_to(PACKAGE).parts) > 1
    ]


def test_every_package_imports_only_from_its_layer_and_below():
    assert {package for package, _ in modules()} == set(LAYERS)
    found = [v for package, path in modules() for v in violations(package, path.read_text())]
    assert found == []


def test_the_layering_check_catches_an_import_from_above():
    assert violations("sparsity", "from fggp_repro.training.trainer import run\n")
    assert violations("reporting", "def f():\n    import fggp_repro.training.data\n")
    assert violations("pruners", "from fggp_repro.runs import experiment\n")
    assert not violations("runs", "from fggp_repro.sparsity.masks import MaskSet\n")


def test_the_top_of_the_package_holds_subpackages_and_at_most_six_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
    for package in LAYERS:
        docstring = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
        assert docstring and len(docstring) > 80, package  # what it holds, what it may import


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for path in sorted((REPO / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines})")
    assert long == []


RECORD = REPO / "tests" / "data" / "record_before_the_move"
#: the command that wrote it, at commit 57b7582, before the modules moved into subpackages
ARGS = ["experiment=demo", "train.epochs=2", "data.train_size=256", "data.test_size=128",
        "schedule.interval=2", "train.progress=false", "pruner=fggp", "sparsity=0.9",
        "seed=7"]  # fmt: skip


def test_a_record_written_before_the_move_is_found_and_kept(tmp_path, monkeypatch, capsys):
    from fggp_repro.cli import main as cli
    from fggp_repro.runs.identity import run_id, run_subdir

    record = json.loads((RECORD / "result.json").read_text())
    run = spec(*ARGS, f"output_root={tmp_path}")
    assert run_id(run) == record["run_id"] == "c444355321"
    run_dir = tmp_path / run_subdir(run)
    shutil.copytree(RECORD, run_dir)
    (run_dir / "model.pt").write_bytes(b"")  # its weights, not kept in the repository
    monkeypatch.setattr("sys.argv", ["fggp-repro", *ARGS, f"output_root={tmp_path}"])
    cli.main()
    out = capsys.readouterr().out
    assert f"already completed: {run_dir}" in out  # kept: not trained again
    assert json.loads((run_dir / "result.json").read_text()) == record


@pytest.mark.parametrize("target", ["fggp_repro.pruners.two_stage.TwoStage",
                                    "fggp_repro.models.vgg.build_vgg",
                                    "fggp_repro.datasets.synthetic.load_synthetic"])  # fmt: skip
def test_the_targets_users_yaml_files_name_still_import(target):
    from fggp_repro.foundations.spec import locate

    assert callable(locate(target))


COUNTING = r"""
import json, sys
calls = {}
def counted(module, name):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        return original(*args, **kwargs)
    setattr(module, name, wrapper)
from fggp_repro.runs import validation
for name in ("check_settings", "check_plugins", "validate"):
    counted(validation, name)
from fggp_repro.cli import config
counted(config, "to_spec")
from fggp_repro.cli import main
sys.argv = ["fggp-repro", *sys.argv[1:]]
try:
    main.main()
finally:
    print("CALLS " + json.dumps(calls))
"""


@pytest.mark.slow
def test_a_run_builds_and_checks_its_spec_once(tmp_path):
    """One command, one run: composed into a RunSpec, its settings and its plugins checked,
    each once (Hydra's run directory comes from that spec, not from a resolver building
    another; the task trains that spec)."""
    import subprocess
    import sys

    args = [*ARGS, f"output_root={tmp_path}"]
    result = subprocess.run([sys.executable, "-c", COUNTING, *args], capture_output=True,
                            text=True, timeout=240, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("CALLS ")]
    calls = json.loads(line.removeprefix("CALLS "))
    assert calls == {"to_spec": 1, "check_settings": 1, "check_plugins": 1}, calls
    assert len(list(tmp_path.rglob("result.json"))) == 1


WITHOUT_TORCH = r"""
import sys
sys.argv = ["fggp-repro", *sys.argv[1:]]
from fggp_repro.cli.main import main
try:
    main()
finally:
    print("TORCH " + str(any(m == "torch" or m.startswith("torch.") for m in sys.modules)))
"""


@pytest.mark.parametrize("args", [["pruner.rate=2"], ["backbone.base_width=0",
                                                      "backbone=resnet_tiny"]])  # fmt: skip
@pytest.mark.slow
def test_cfg_job_runs_the_checks_of_a_run_without_torch(args):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, "--cfg", "job", *args],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("fggp-repro: error: ") and "must be" in line
    assert "TORCH False" in result.stdout
