#!/usr/bin/env bash
# The device check: everything about the GPU path that a CPU cannot show, in one command that
# finishes in about 8 minutes on one H100/H200 and writes all it measures under $OUT.
#
#   OUT=/tmp/check bash scripts/gpu_check.sh
#
# Needs only torch (with torchvision, pytest) and this checkout: the code runs from src/ with no
# install. The two command-line runs need Hydra, which a bare GPU machine lacks: make it once
# on a machine with PyPI (`bash scripts/gpu_prepare.sh` fills the git-ignored .gpu/site) and
# send .gpu/site along with the checkout. Without a GPU it runs its CPU dry mode: the same
# steps on the CPU (the captured step on the stand-in graph of tests/fake_graph.py, the
# benchmark and the runs on a tiny network), so the script itself is tested everywhere.
#
# Under $OUT: env.txt, tests.log, bench/<device>.json with bench.log, runs.log and runs.json
# (each run's step path, recaptures, fallbacks, wall and checkpoint time) with runs/ (each run's
# record and metrics; the runs themselves train in a temporary folder), and summary.txt with
# one line per step. The exit status is non-zero when any step failed.
# PYTHON names the interpreter (default: python3 on the PATH).
set -uo pipefail
: "${OUT:?set OUT to the directory the results go to}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mkdir -p "$OUT"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
export PYTHONPATH="$ROOT/src:$ROOT/.gpu/site${PYTHONPATH:+:$PYTHONPATH}"
export HYDRA_FULL_ERROR=0 CUBLAS_WORKSPACE_CONFIG=:4096:8
failed=0
: >"$OUT/summary.txt"

step() {  # step NAME TIMEOUT_SECONDS LOG COMMAND...: run, time, and note the outcome
  local name=$1 limit=$2 log=$3 started status
  shift 3
  started=$(date +%s)
  timeout "$limit" "$@" >"$OUT/$log" 2>&1
  status=$?
  local line
  line="$(printf '%-10s %s in %ss (%s)' "$name" "$([ $status -eq 0 ] && echo ok || echo "FAILED, exit $status")" "$(($(date +%s) - started))" "$log")"
  echo "$line" | tee -a "$OUT/summary.txt"
  [ $status -eq 0 ] || failed=1
}

"$PYTHON" - >"$OUT/env.txt" 2>&1 <<'EOF'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__)
print("cuda", torch.version.cuda, "available", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i}", torch.cuda.get_device_name(i))
EOF
command -v nvidia-smi >/dev/null && nvidia-smi >>"$OUT/env.txt" 2>&1
if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  MODE=gpu
  TESTS=(-m cuda tests/test_fast_path.py tests/test_resume.py)
  BENCH=(--backbones vgg19 resnet50)
  RUN="backbone=vgg19 data.train_size=4016 data.test_size=1000 schedule.interval=20"
else
  MODE=cpu-dry
  TESTS=(tests/test_fast_path.py)
  BENCH=(--backbones vgg_tiny --steps 3 --workers 0)
  RUN="backbone=vgg_tiny data.train_size=272 data.test_size=64 schedule.interval=2"
fi
echo "mode $MODE" | tee -a "$OUT/summary.txt"

step tests 90 tests.log "$PYTHON" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
step benchmark 300 bench.log "$PYTHON" scripts/benchmark.py "${BENCH[@]}" --out "$OUT/bench"

# fggp and granet through the command line: 3 epochs with a partial last batch, pruning events
# every `schedule.interval` steps, an LR milestone after epoch 2, a checkpoint after every epoch
runs() {
  if ! "$PYTHON" -c "import hydra, omegaconf" 2>/dev/null; then
    echo "Hydra is not importable here: run scripts/gpu_prepare.sh and carry .gpu/site"
    return 1
  fi
  local pruner work status=0
  work="$(mktemp -d)"
  for pruner in fggp granet; do
    # shellcheck disable=SC2086
    "$PYTHON" -m fggp_repro.cli.main experiment=demo "pruner=$pruner" $RUN train.epochs=3 \
      'optim.milestones=[2]' checkpoint.min_seconds=0 train.progress=false \
      "output_root=$work" || status=1
  done
  "$PYTHON" - "$work" "$OUT" >"$OUT/runs.json" <<'EOF' || status=1
import json, pathlib, shutil, sys
work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]) / "runs"
keys = ("pruner", "status", "step_path", "step_path_details", "images_per_second",
        "wall_seconds_per_epoch", "checkpoint_seconds", "wall_seconds", "train_seconds",
        "iterations", "achieved_sparsity", "final_test_acc", "device_name")
summaries = []
for path in sorted(work.rglob("result.json")):
    record = json.loads(path.read_text())
    kept = out / record["pruner"]
    kept.mkdir(parents=True, exist_ok=True)
    for name in ("result.json", "metrics.jsonl"):
        if (path.parent / name).is_file():
            shutil.copy(path.parent / name, kept / name)
    for fallback in record.get("step_path_details", {}).get("fallbacks", []):
        fallback.pop("traceback", None)  # it is in the run's own record
    summaries.append({k: record.get(k) for k in keys})
print(json.dumps(summaries, indent=2))
EOF
  rm -rf "$work"
  return $status
}
export PYTHON OUT RUN
step runs 90 runs.log bash -c "$(declare -f runs); runs"

echo "results under $OUT" | tee -a "$OUT/summary.txt"
exit $failed
