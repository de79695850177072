#!/usr/bin/env bash
# Offline demo: dense, GMP and FGGP at 90% and 98% sparsity, two seeds each, on synthetic
# CIFAR-shaped data with a tiny VGG (conf/experiment/demo.yaml), on CPU in about a minute.
# Results land in results/demo/ (rerunning retrains and replaces them), then a table is printed
# and results/demo/accuracy.png is drawn.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
common=(experiment=demo seed=1,2 train.progress=false skip_completed=false)
fggp-repro --multirun "${common[@]}" pruner=dense
fggp-repro --multirun "${common[@]}" pruner=gmp,fggp sparsity=0.9,0.98
echo
echo "Final-epoch test accuracy on synthetic data (mean +- std over seeds):"
fggp-repro-table results/demo --plot results/demo/accuracy.png
