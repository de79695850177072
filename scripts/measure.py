"""Measure what changes from release to release, and write it down: the demo's time and output,
the test tiers' times, a refusal's time, the environment's size, and the benchmark reports under
results/bench/. It writes results/measured.json (what it measured this time, merged over what
it measured before) and docs/measured.md from it, so no such figure is typed by hand.

    python scripts/measure.py                    # everything (about 10 minutes on 2 cores)
    python scripts/measure.py demo refusal       # some of it

Run it on a quiet machine: the times are wall-clock times of whole commands.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASURED = REPO / "results" / "measured.json"
PAGE = REPO / "docs" / "measured.md"
BIN = Path(sys.executable).parent


def timed(command: list[str], **options) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, **options)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started, result


def measure_demo() -> dict:
    """scripts/demo.sh from an empty output folder (its environment in place)."""
    with tempfile.TemporaryDirectory() as out:
        seconds, result = timed(["bash", "scripts/demo.sh", f"output_root={out}/demo"])
    table = result.stdout[result.stdout.index("### ") :].strip()
    return {"command": "bash scripts/demo.sh", "seconds": round(seconds, 1), "output": table}


def measure_tests() -> dict:
    """Both tiers, each as the README's test command runs it."""
    tiers = {}
    for name, extra in (("fast", ["-m", "not slow"]), ("all", [])):
        seconds, result = timed(["bash", "scripts/test.sh", "-q", *extra])
        summary = [line for line in result.stdout.splitlines() if " passed" in line][-1]
        tiers[name] = {"command": shlex.join(["bash", "scripts/test.sh", *extra]),
                       "seconds": round(seconds, 1), "summary": summary.strip("= ")}  # fmt: skip
    return tiers


def measure_refusal() -> dict:
    """A refused command, start to exit: the median of seven."""
    command = [str(BIN / "fggp-repro"), "sparsity=2"]
    times = []
    for _ in range(7):
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, capture_output=True)
        times.append(time.perf_counter() - started)
    return {
        "command": "fggp-repro sparsity=2",
        "median_seconds": round(statistics.median(times), 2),
    }


def measure_environment() -> dict:
    venv = Path(sys.prefix)
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    return {"venv_gb": round(size / 1e9, 1), "python": platform.python_version()}


def benchmarks() -> dict:
    """The benchmark reports under results/bench/ (scripts/benchmark.py writes them)."""
    return {path.stem: json.loads(path.read_text())
            for path in sorted((REPO / "results" / "bench").glob("*.json"))}  # fmt: skip


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{platform.machine()}, {os.cpu_count()} cores, load {load:.2f} when measured"


def page(measured: dict) -> str:
    lines = [
        "# Measured",
        "",
        "Written by `python scripts/measure.py` from `results/measured.json`; do not edit by "
        "hand. Each figure is one measurement of a whole command on the machine named.",
        "",
    ]
    if "demo" in measured:
        demo = measured["demo"]
        lines += ["## The demo", "", f"`{demo['command']}` took {demo['seconds']} s on "
                  f"{demo['machine']} ({demo['date']}). Its output ends:", "", "```",
                  demo["output"], "```", ""]  # fmt: skip
    if "tests" in measured:
        lines += ["## The tests", ""]
        for tier in measured["tests"]["tiers"].values():
            lines.append(f"- `{tier['command']}`: {tier['seconds']} s ({tier['summary']})")
        lines += ["", f"on {measured['tests']['machine']} ({measured['tests']['date']}).", ""]
    if "refusal" in measured:
        refusal = measured["refusal"]
        seconds = refusal["median_seconds"]
        lines += ["## A refusal", "", f"`{refusal['command']}`: {seconds} s, the median of "
                  f"seven, on {refusal['machine']} ({refusal['date']}).", ""]  # fmt: skip
    if "environment" in measured:
        env = measured["environment"]
        lines += ["## The environment", "", f"`.venv/`: {env['venv_gb']} GB (Python "
                  f"{env['python']}; {env['date']}).", ""]  # fmt: skip
    for report in measured.get("benchmarks", {}).values():
        lines += [f"## Benchmark: {report['device']}", "",
                  f"`{report.get('command', 'scripts/benchmark.py')}` ({report['date']}, torch "
                  f"{report['torch']}, batch {report['batch_size']}), images/s:", "",
                  "| backbone | " + " | ".join(_variants(report)) + " |",
                  "|" + " --- |" * (len(_variants(report)) + 1)]  # fmt: skip
        for backbone, entry in report["backbones"].items():
            rates = entry.get("images_per_second", {})
            cells = [f"{rates[v]:,.0f}" if rates.get(v) else "–" for v in _variants(report)]
            lines.append(f"| {backbone} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _variants(report: dict) -> list[str]:
    return list(dict.fromkeys(v for e in report["backbones"].values()
                              for v in e.get("images_per_second", {})))  # fmt: skip


MEASURES = {"demo": measure_demo, "tests": lambda: {"tiers": measure_tests()},
            "refusal": measure_refusal, "environment": measure_environment}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="*", help=f"any of {', '.join(MEASURES)} (default: all)")
    parser.add_argument(
        "--page-only", action="store_true", help="rewrite the page, measure nothing"
    )
    args = parser.parse_args()
    unknown = set(args.what) - set(MEASURES)
    if unknown:
        parser.error(
            f"cannot measure {', '.join(sorted(unknown))}: choose from {', '.join(MEASURES)}"
        )
    args.what = args.what or list(MEASURES)
    measured = json.loads(MEASURED.read_text()) if MEASURED.exists() else {}
    for name in [] if args.page_only else args.what:
        print(f"measuring {name} ...", flush=True)
        stamp = {"date": datetime.date.today().isoformat(), "machine": machine()}
        measured[name] = {**MEASURES[name](), **stamp}
        MEASURED.parent.mkdir(parents=True, exist_ok=True)
        MEASURED.write_text(json.dumps(measured, indent=2) + "\n")
    measured["benchmarks"] = benchmarks()
    PAGE.write_text(page(measured))
    print(f"written: {MEASURED.relative_to(REPO)}, {PAGE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
