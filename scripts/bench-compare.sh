#!/usr/bin/env bash
# bench-compare.sh — `sweep bench` and the PyTorch reference (../shared/bench/torch_probe.py)
# on the same models, one table with the ratios. Needs target/release/sweep and a Python with
# torch ($TORCH_PYTHON, default /tmp/torch-venv/bin/python; set-up in ../shared/bench/README.md).
#
# Figures on a shared 2-core VM drift by tens of percent within minutes, on both sides, so
# each case runs ROUNDS times (default 3) as a pair: ours, then PyTorch's at once. The table
# gives the median of each side and the median and range of the per-pair ratios.
# THREADS (default 2) sets both sides' thread count; STEPS (default 15) our timed steps.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
rounds="${ROUNDS:-3}"
steps="${STEPS:-15}"
python="${TORCH_PYTHON:-/tmp/torch-venv/bin/python}"
probe="${TORCH_PROBE:-../shared/bench/torch_probe.py}"
have_torch=0
[[ -x "$python" && -f "$probe" ]] && have_torch=1
[[ $have_torch == 1 ]] || echo "no PyTorch at $python: our side only" >&2

ours() {  # ours CASE → img/s
  RAYON_NUM_THREADS=$threads target/release/sweep bench --case "$1" --steps "$steps" --warmup 3 |
    awk '/img\/s/ { print $4 }'
}
theirs() {  # theirs PROBE-ARGS… → img/s
  THREADS=$threads "$python" "$probe" "$@" 2>/dev/null | sed -n 's/.*img_per_s=\([0-9.]*\).*/\1/p'
}
# median and range of the numbers on stdin, one per line
summary() { sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) { print "-"; exit }
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "%.2f (%.2f–%.2f)\n", m, v[1], v[NR] }'; }
median() { summary | awk '{ print $1 }'; }

printf '%-20s %14s %14s %20s\n' "step (64x64, b 64)" "sweep img/s" "torch img/s" "ratio (range)"
row() {  # row LABEL CASE PROBE-ARGS…
  local label="$1" case="$2"; shift 2
  local a b as=() bs=() rs=()
  for _ in $(seq "$rounds"); do
    a="$(ours "$case")"; as+=("$a")
    if [[ $have_torch == 1 ]]; then
      b="$(theirs "$@")"; bs+=("$b")
      [[ -n "$a" && -n "$b" ]] && rs+=("$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')")
    fi
  done
  printf '%-20s %14s %14s %20s\n' "$label" \
    "$(printf '%s\n' "${as[@]}" | median)" \
    "$( ((${#bs[@]})) && printf '%s\n' "${bs[@]}" | median || echo -)" \
    "$( ((${#rs[@]})) && printf '%s\n' "${rs[@]}" | summary || echo -)"
  echo "  $label, each round: sweep ${as[*]}; torch ${bs[*]:-}" >&2
}
row "resnet train" "resnet train" train-resnet 64
row "mlp 24-48 train" "mlp-24-48 train" train-mlp 24
row "resnet inference" "resnet infer" infer-resnet 64
