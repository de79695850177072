"""The README's and docs' promises that can be checked: the own-loop example runs, the quick
start names the two scripts, the README stays short with a table of contents of docs/, every
link between them resolves, and the run-id paragraph names every key left out of the id."""

import json
import re

from conftest import REPO

DOCS = REPO / "docs"


def readme() -> str:
    return (REPO / "README.md").read_text()


def test_own_training_loop_example_runs_and_reaches_its_target():
    block = (DOCS / "extending.md").read_text().split("<!-- own-loop -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/extending.md own-loop example", "exec"), namespace)  # noqa: S102
    masks = namespace["masks"]
    assert masks.active_count == round(0.05 * masks.numel)
    assert sum(int((w != 0).sum()) for w in masks.weights) == masks.active_count


def test_quick_start_names_the_two_scripts_first():
    quick_start = readme().split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^bash (scripts/\S+)", quick_start, re.M)
    assert commands == ["scripts/demo.sh", "scripts/test.sh"]
    assert all((REPO / c).exists() for c in commands)


def test_the_readme_is_a_page_with_a_table_of_contents_of_docs():
    text = readme()
    assert len(text.splitlines()) <= 250
    listed = set(re.findall(r"\(docs/([a-z-]+\.md)\)", text))
    assert listed == {p.name for p in DOCS.glob("*.md")}


def test_every_link_between_the_readme_and_docs_resolves():
    pages = [REPO / "README.md", *DOCS.glob("*.md")]
    anchors = {page: set(map(anchor, re.findall(r"^#+ (.+)$", page.read_text(), re.M)))
               for page in pages}  # fmt: skip
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith("http"):
                continue
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), (page.name, target)
            if fragment and linked.suffix == ".md":
                assert fragment in anchors.get(linked, set()), (page.name, target)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_the_run_identity_paragraph_names_every_key_left_out_of_the_run_id():
    from fggp_repro.runs.identity import IGNORED

    text = (DOCS / "usage.md").read_text()
    paragraph = text.split("**Run identity.**", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z_.*]+)`", paragraph))
    assert {
        key if "." in key or key != "checkpoint" else "checkpoint.*" for key in IGNORED
    } <= named


def test_the_readme_shows_the_committed_real_data_result():
    """The README's table, ranks and test are those the committed records give (the tables
    fggp-repro-table wrote under results/fashion_ablation/tables/ from them)."""
    tables = REPO / "results" / "fashion_ablation" / "tables"
    block = readme().split("<!-- fashion-result -->", 1)[1].split("<!-- /fashion-result -->")[0]
    shown = [line for line in block.splitlines() if line.startswith("| ")]
    committed = (tables / "paper_table.md").read_text() + (tables / "rankings.md").read_text()
    assert shown and all(line in committed.splitlines() for line in shown)
    significance = json.loads((tables / "significance.json").read_text())["fashion_mnist"]
    assert f"p = {significance['p_value']:.3g}" in block
    assert f"critical difference {significance['critical_difference']:.2f}" in block
