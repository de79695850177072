"""The README's promises that can be executed: the own-loop example and the quick start."""

import re

from conftest import REPO


def readme() -> str:
    return (REPO / "README.md").read_text()


def test_own_training_loop_example_runs_and_reaches_its_target():
    block = readme().split("<!-- own-loop -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README own-loop example", "exec"), namespace)  # noqa: S102
    masks = namespace["masks"]
    assert masks.active_count == round(0.05 * masks.numel)
    assert sum(int((w != 0).sum()) for w in masks.weights) == masks.active_count


def test_quick_start_names_the_two_scripts_first():
    quick_start = readme().split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^bash (scripts/\S+)", quick_start, re.M)
    assert commands == ["scripts/demo.sh", "scripts/test.sh"]
    assert all((REPO / c).exists() for c in commands)


def test_readme_names_every_key_left_out_of_the_run_id():
    from fggp_repro.identity import IGNORED

    paragraph = readme().split("**Run identity.**", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z_.*]+)`", paragraph))
    assert {
        key if "." in key or key != "checkpoint" else "checkpoint.*" for key in IGNORED
    } <= named
