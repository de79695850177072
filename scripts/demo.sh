#!/usr/bin/env bash
# Offline demo of the paper-table path (conf/experiment/demo_grid.yaml): a tiny VGG on synthetic
# CIFAR-shaped data, GMP, FGGP and GraNet's pruning rule (mfgn_annealed) at 90% and 98% sparsity
# from both initial states, dense as the reference, two seeds; on a CPU in under 3 minutes.
# Runs land in results/demo_grid/; a second call reuses them. At the end the ranked paper table
# is printed and written with its plots to results/demo_grid/tables/.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
fggp-repro --multirun experiment=demo_grid train.progress=false "$@"
