#!/usr/bin/env bash
# bench-compare.sh — `sweep bench` against the PyTorch and Keras references
# (../shared/bench/torch_probe.py, keras_probe.py) on the same models, one table with the
# ratios. Needs target/release/sweep, and a Python with torch ($TORCH_PYTHON, default
# /tmp/torch-venv/bin/python) and/or one with tensorflow ($KERAS_PYTHON, default
# /tmp/tf-venv/bin/python); set-up in ../shared/bench/README.md. A missing one is skipped.
#
# Figures on a shared 2-core VM drift by tens of percent within minutes, on every side, so
# each case runs ROUNDS times (default 3) as a group: ours, then each reference at once. The
# table gives each side's median, and the median and range of the per-group ratios: against
# PyTorch, and against the faster of the two references in the group.
# THREADS (default 2) sets every side's thread count; STEPS (default 15) our timed steps, and
# MLP_STEPS (default 300) those of the MLP, whose step is ~1 ms: 15 of them are a 20 ms window,
# in which one slow phase of the shared VM moved the median from 47k to 32k img/s.
# SWEEP_BIN (default target/release/sweep) is the build measured, e.g. an older one to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
rounds="${ROUNDS:-3}"
steps="${STEPS:-15}"
mlp_steps="${MLP_STEPS:-300}"
torch_py="${TORCH_PYTHON:-/tmp/torch-venv/bin/python}"
torch_probe="${TORCH_PROBE:-../shared/bench/torch_probe.py}"
keras_py="${KERAS_PYTHON:-/tmp/tf-venv/bin/python}"
keras_probe="${KERAS_PROBE:-../shared/bench/keras_probe.py}"
have() { [[ -x "$1" && -f "$2" ]]; }
have "$torch_py" "$torch_probe" || echo "no PyTorch at $torch_py: column skipped" >&2
have "$keras_py" "$keras_probe" || echo "no Keras at $keras_py: column skipped" >&2

sweep_bin="${SWEEP_BIN:-target/release/sweep}"
ours() {  # ours CASE → img/s
  local n="$steps"
  [[ "$1" == mlp* ]] && n="$mlp_steps"
  RAYON_NUM_THREADS=$threads "$sweep_bin" bench --case "$1" --steps "$n" --warmup 3 |
    awk '/img\/s/ { print $4 }'
}
reference() {  # reference PYTHON PROBE PROBE-ARGS… → img/s, or nothing
  local py="$1" probe="$2"; shift 2
  have "$py" "$probe" || return 0
  THREADS=$threads "$py" "$probe" "$@" 2>/dev/null | sed -n 's/.*img_per_s=\([0-9.]*\).*/\1/p'
}
# median (range) of the numbers on stdin, one per line; "-" for none
summary() { sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) { print "-"; exit }
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "%.2f (%.2f–%.2f)\n", m, v[1], v[NR] }'; }
median() { summary | awk '{ print $1 }'; }
list() { (($# > 0)) && printf '%s\n' "$@"; return 0; }

printf '%-18s %11s %11s %11s %20s %20s\n' "step (64x64, b 64)" "sweep img/s" "torch" "keras" \
  "vs torch (range)" "vs best (range)"
row() {  # row LABEL CASE PROBE-ARGS…
  local label="$1" case="$2"; shift 2
  local a t k as=() ts=() ks=() rt=() rb=()
  for _ in $(seq "$rounds"); do
    a="$(ours "$case")"
    t="$(reference "$torch_py" "$torch_probe" "$@")"
    k="$(reference "$keras_py" "$keras_probe" "$@")"
    as+=("$a"); [[ -n "$t" ]] && ts+=("$t"); [[ -n "$k" ]] && ks+=("$k")
    [[ -n "$a" && -n "$t" ]] && rt+=("$(awk -v a="$a" -v b="$t" 'BEGIN { print a / b }')")
    if [[ -n "$a" && ( -n "$t" || -n "$k" ) ]]; then
      rb+=("$(awk -v a="$a" -v t="${t:-0}" -v k="${k:-0}" 'BEGIN { print a / (t > k ? t : k) }')")
    fi
  done
  printf '%-18s %11s %11s %11s %20s %20s\n' "$label" "$(list "${as[@]}" | median)" \
    "$(list "${ts[@]}" | median)" "$(list "${ks[@]}" | median)" \
    "$(list "${rt[@]}" | summary)" "$(list "${rb[@]}" | summary)"
  echo "  $label, each round: sweep ${as[*]}; torch ${ts[*]:-}; keras ${ks[*]:-}" >&2
}
row "resnet train" "resnet train" train-resnet 64
row "mlp 24-48 train" "mlp-24-48 train" train-mlp 24
row "resnet inference" "resnet infer" infer-resnet 64
