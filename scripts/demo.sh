#!/usr/bin/env bash
# Offline demo of the paper-table path on real images (conf/experiment/demo_fashion.yaml): the
# tiny VGG on 10,000 Fashion-MNIST images, GMP, FGGP and GraNet's pruning rule (mfgn_annealed)
# at 90% and 98% from a dense start, dense as the reference; about two and a half minutes on a
# 2-core CPU. Fashion-MNIST comes from Debian's package dataset-fashion-mnist, installed here
# when it is missing and this runs as root with apt; where it cannot be had, the demo says so
# and runs its synthetic twin (conf/experiment/demo_grid.yaml) instead.
# Runs land in results/demo_fashion/ (or results/demo_grid/); a second call reuses them. At the
# end the ranked paper table is printed and written with its plots to <that folder>/tables/.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
has_fashion_mnist() {
  python -c "import pathlib; from fggp_repro.datasets.fashion_mnist import find_folder; \
find_folder(pathlib.Path('data'))" 2>/dev/null
}
if ! has_fashion_mnist && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[setup] installing Debian's dataset-fashion-mnist (real images for the demo)" >&2
  { apt-get install -y -qq dataset-fashion-mnist || { apt-get update -qq &&
    apt-get install -y -qq dataset-fashion-mnist; }; } >/dev/null 2>&1 || true
fi
if has_fashion_mnist; then
  fggp-repro --multirun experiment=demo_fashion train.progress=false "$@"
else
  echo "[demo] Fashion-MNIST is not here and could not be installed (apt-get install" \
    "dataset-fashion-mnist as root, or data.root=<dir>): running on synthetic data" >&2
  fggp-repro --multirun experiment=demo_grid train.progress=false "$@"
fi
