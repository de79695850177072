#!/usr/bin/env bash
# Set up (if needed) and run the checks CI runs: lint, format, and the test suite.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ruff check .
ruff format --check .
# two workers, one thread each: most tests start the CLI as a subprocess, and two torch
# processes with two threads each would fight over the two cores
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m pytest -n 2 --dist loadfile "$@"
