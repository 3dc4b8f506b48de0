#!/usr/bin/env bash
# bench-compare.sh — `sweep bench` and the PyTorch reference (../shared/bench/torch_probe.py)
# back to back on the same models, one table with the ratios. Needs target/release/sweep and
# a Python with torch ($TORCH_PYTHON, default /tmp/torch-venv/bin/python; set-up in
# ../shared/bench/README.md). THREADS (default 2) sets both sides' thread count.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
python="${TORCH_PYTHON:-/tmp/torch-venv/bin/python}"
probe="${TORCH_PROBE:-../shared/bench/torch_probe.py}"
sweep_out="$(RAYON_NUM_THREADS=$threads target/release/sweep bench --steps "${STEPS:-15}" --warmup 3)"
echo "$sweep_out" >&2
ours() { echo "$sweep_out" | awk -v m="$1" -v k="$2" '$1 == m && $3 == k { print $4 }'; }
theirs() {
  if [[ -x "$python" && -f "$probe" ]]; then
    THREADS=$threads "$python" "$probe" "$@" 2>/dev/null | sed -n 's/.*img_per_s=\([0-9.]*\).*/\1/p'
  fi
}
printf '%-26s %12s %12s %8s\n' "step (64x64, batch 64)" "sweep img/s" "torch img/s" "ratio"
row() {
  local name="$1" a="$2" b="$3"
  local ratio="-"
  [[ -n "$a" && -n "$b" ]] && ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
  printf '%-26s %12s %12s %8s\n' "$name" "$a" "${b:--}" "$ratio"
}
row "resnet train" "$(ours resnet train)" "$(theirs train-resnet 64)"
row "mlp 24-48 train" "$(ours mlp-24-48 train)" "$(theirs train-mlp 24)"
row "resnet inference" "$(ours resnet infer)" "$(theirs infer-resnet 64)"
