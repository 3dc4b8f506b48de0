#!/usr/bin/env bash
# gpu-check.sh [BIN.xz|BIN] — the GPU check, for a machine with an NVIDIA GPU and no Rust:
# carry target/cuda-dist/sweep.xz (built here by scripts/build-cuda.sh) beside the repository.
#
# 1. `sweep bench` on cuda:0: the seed's ResNet 64x64 and MLP train steps, ResNet inference.
# 2. A real sweep on synthetic data at the seed's scale (100 classes, 64x64, the seed's ResNet)
#    with 1, 4 and 8 trials per GPU, and one table: img/s per trial, aggregate img/s, GPU
#    memory per trial, the sweep's wall time.
# Well inside 10 minutes on an H200. The transcript goes to $OUT/gpu-check.log when $OUT is set.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-target/cuda-dist/sweep.xz}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"   # the sweeps run in other folders
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
work="$(mktemp -d)"
# Knobs for a dry run elsewhere (defaults: the seed's scale on cuda:0).
TRAIN="${GPU_CHECK_TRAIN:-3000}"
SIZE="${GPU_CHECK_SIZE:-64}"
FILTERS="${GPU_CHECK_FILTERS:-[64, 128, 256]}"
DEVICE="${GPU_CHECK_DEVICE:-cuda:0}"
EPOCHS="${GPU_CHECK_EPOCHS:-2}"
TRIALS=8
sweep() { "$here/run-cuda.sh" "$bin" "$@"; }

{
  echo "== nvidia-smi"
  nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv 2>&1 || true
  echo "== glibc: $(ldd --version 2>&1 | head -1)"

  echo "== sweep bench --device $DEVICE (batch 64)"
  start=$(date +%s)
  timeout 240 "$here/run-cuda.sh" "$bin" bench --device "$DEVICE" --size "$SIZE" --steps 20 --warmup 5 2>&1
  echo "== bench rc=$? after $(( $(date +%s) - start ))s"

  rows=()
  for per_gpu in 1 4 8; do
    dir="$work/tpd$per_gpu"; mkdir -p "$dir"
    cat > "$dir/gpu.toml" <<TOML
name = "gpu-$per_gpu"
[data]
synthetic = { classes = 100, size = $SIZE, train = $TRAIN, val = 500, test = 100, seed = 7 }
[model]
arch = "resnet"
filters = $FILTERS
neurons = 32
dropout = 0.5
[train]
epochs = $EPOCHS
batch_size = 64
[grid]
lr = [0.01, 0.007, 0.005, 0.003, 0.002, 0.001, 0.0007, 0.0005]
[run]
devices = "$DEVICE"
trials_per_device = $per_gpu
TOML
    # Peak GPU memory of each trial process, sampled every half second.
    (while true; do nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null; sleep 0.5; done) > "$dir/mem.csv" &
    sampler=$!
    start=$(date +%s%N)
    (cd "$dir" && timeout 300 "$here/run-cuda.sh" "$bin" run gpu.toml --db sweep.db --results results > run.log 2>&1)
    rc=$?
    wall=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    kill "$sampler" 2>/dev/null
    echo "== $per_gpu trials per GPU: rc=$rc, wall ${wall}s"; tail -3 "$dir/run.log"
    stats=$(cd "$dir" && "$here/run-cuda.sh" "$bin" query --db sweep.db --format csv \
      "SELECT count(DISTINCT trial_id) AS trials, avg(seconds) AS epoch_s, count(*) AS epochs FROM epochs" 2>/dev/null | tail -1)
    trials=$(echo "$stats" | cut -d, -f1); epoch_s=$(echo "$stats" | cut -d, -f2); epochs=$(echo "$stats" | cut -d, -f3)
    per_trial=$(awk -v n="$((TRAIN + 500))" -v s="$epoch_s" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')
    aggregate=$(awk -v e="$epochs" -v n="$((TRAIN + 500))" -v w="$wall" 'BEGIN { printf "%.1f", (w > 0 ? e * n / w : 0) }')
    mem=$(awk -F', ' '{ if ($2 > peak[$1]) peak[$1] = $2 } END { n = 0; s = 0; for (p in peak) { n++; s += peak[p] } if (n) printf "%.0f", s / n; else print "?" }' "$dir/mem.csv")
    rows+=("$(printf '%8s  %6s  %14.1f  %14.1f  %12s  %8.1f' "$per_gpu" "$trials" "$per_trial" "$aggregate" "$mem" "$wall")")
  done
  echo
  echo "== sweep on $DEVICE: 100 classes, ${SIZE}x${SIZE}, ResNet $FILTERS, $TRIALS trials x $EPOCHS epochs x $((TRAIN + 500)) images"
  echo "   (img/s counts training and validation images; per trial = images / epoch seconds)"
  printf '%8s  %6s  %14s  %14s  %12s  %8s\n' "per_gpu" "trials" "img/s/trial" "img/s total" "MiB/trial" "wall_s"
  printf '%s\n' "${rows[@]}"
} 2>&1 | tee "$out/gpu-check.log"
rm -rf "$work"
