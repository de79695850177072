#!/usr/bin/env bash
# Set up (if needed) and run the checks CI runs: lint, format, and the test suite.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ruff check .
ruff format --check .
python -m pytest "$@"
