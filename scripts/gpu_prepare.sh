#!/usr/bin/env bash
# Put Hydra and OmegaConf (and what they need) into .gpu/site (git-ignored), for a GPU machine
# that has torch but neither of them and no PyPI: send .gpu/site with the checkout, and
# scripts/gpu_check.sh puts it on the path. Run it here, where PyPI can be reached.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SITE="$ROOT/.gpu/site"
DOWNLOADS="$(mktemp -d)"
trap 'rm -rf "$DOWNLOADS"' EXIT
PIP="python3 -m pip --disable-pip-version-check -q"
$PIP download --no-deps -d "$DOWNLOADS" hydra-core==1.3.2 omegaconf==2.3.0 \
  antlr4-python3-runtime==4.9.3 PyYAML==6.0.2
rm -rf "$SITE"
# all pure Python but PyYAML, whose compiled part is for this Python only: elsewhere PyYAML
# runs on its pure-Python loader
$PIP install --no-deps --target "$SITE" "$DOWNLOADS"/*
echo "ready: $SITE ($(du -sh "$SITE" | cut -f1))"
