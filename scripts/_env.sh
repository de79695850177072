# Sourced by the other scripts: make sure a Python environment with fggp-repro exists and is active.
# Uses the active virtual environment if there is one, else creates ./.venv. Set FGGP_TORCH to
# choose the torch build (default: the versions this project is tested with).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating virtual environment .venv" >&2
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
PIP="python -m pip --disable-pip-version-check -q"
if ! python -c "import torch, torchvision" 2>/dev/null; then
  echo "[setup] installing ${FGGP_TORCH:=torch==2.14.1 torchvision==0.29.1}" >&2
  # shellcheck disable=SC2086
  $PIP install $FGGP_TORCH 2>&1 | grep -v "is ignored: it is neither" >&2 || true
  python -c "import torch, torchvision" || { echo "[setup] error: torch did not install" >&2; exit 1; }
fi
stamp="$(python -c 'import sys; print(sys.prefix)')/.fggp-repro-installed"
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp" || ! python -c "import fggp_repro" 2>/dev/null; then
  echo "[setup] installing fggp-repro (editable) and its test tools" >&2
  $PIP install -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
  python -c "import fggp_repro" || { echo "[setup] error: fggp-repro did not install" >&2; exit 1; }
  cp pyproject.toml "$stamp"
fi
