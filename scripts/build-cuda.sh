#!/usr/bin/env bash
# build-cuda.sh — build a CUDA-enabled (candle `cuda` feature) release binary on a
# machine WITHOUT a GPU and WITHOUT a system CUDA toolkit (Debian 12, x86_64).
#
# nvcc, headers and the CUDA libraries come from NVIDIA's PyPI wheels, installed
# with `pip --target` into a cache dir OUTSIDE the repo (~1.2 GiB, never committed,
# never carried to the GPU machine). The only thing not on PyPI is libcuda.so (the
# driver); a link-time-only stub is generated from cudarc's own bindings.
#
# Usage (from the workspace root; `just build-cuda` runs it):
#   scripts/build-cuda.sh                            builds target/cuda/release/sweep and
#                                                    packs target/cuda-dist/sweep.xz
# Env knobs:
#   CUDA_COMPUTE_CAP   GPU arch for the kernels (default 90 = H100/H200 -> sm_90a)
#   CUDA_PIP_DIR       where the wheels go (default ~/.cache/cuda-pip/13.0)
#   CUDA_TARGET_DIR    cargo target dir for the CUDA build (default target/cuda)
#   CUDA_FEATURES      cargo features to enable (default "cuda")
#   CUDA_SMOKE=1       afterwards run each binary once locally with $CUDA_SMOKE_ARGS
#                      against the stub driver (must fail gracefully: "no CUDA device")
#   CUDA_DIST_DIR=dir  also write <dir>/<bin>.xz (stripped + xz, ~6 MB instead of ~50 MB)
#                      to carry to the GPU machine (e.g. an ignored path in the repo)
#
# Toolkit is pinned to CUDA 13.0 on purpose: the GPU machine runs driver 580
# (= CUDA 13.0). candle ships its kernels as PTX that the *driver* JIT-compiles;
# PTX from a newer nvcc (13.1+) is rejected by a 13.0 driver
# (CUDA_ERROR_UNSUPPORTED_PTX_VERSION). Also cudarc 0.19.10 knows CUDA <= 13.4 only.
set -euo pipefail

CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
CUDA_PIP_DIR="${CUDA_PIP_DIR:-$HOME/.cache/cuda-pip/13.0}"
CUDA_TARGET_DIR="${CUDA_TARGET_DIR:-target/cuda}"
CUDA_DIST_DIR="${CUDA_DIST_DIR-target/cuda-dist}"
CUDA_FEATURES="${CUDA_FEATURES:-cuda}"
PYTHON="${PYTHON:-python3}"

# Exact wheel pins (CUDA 13.0 update 2 / first cuBLAS+cuRAND of 13.0).
WHEELS=(
  nvidia-cuda-nvcc==13.0.88     # bin/nvcc ptxas fatbinary nvlink cudafe++
  nvidia-nvvm==13.0.88          # nvvm/bin/cicc, libdevice (nvcc needs it)
  nvidia-cuda-crt==13.0.88      # include/crt/host_config.h etc. (nvcc needs it)
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h cuda_fp16.h cuda_bf16.h libcudart.so.13
  nvidia-cuda-cccl==13.0.85     # include/cccl (cub/thrust/libcu++; nvcc -isystem's it)
  nvidia-cuda-nvrtc==13.0.88    # libnvrtc.so.13   (link time only)
  nvidia-cublas==13.0.0.19      # libcublas(Lt).so.13 (link time only, 420 MB wheel)
  nvidia-curand==10.4.0.35      # libcurand.so.10  (link time only)
)

CU="$CUDA_PIP_DIR/nvidia/cu13"
STAMP="$CUDA_PIP_DIR/.installed-$(printf '%s\n' "${WHEELS[@]}" | sha1sum | cut -c1-12)"

log() { printf '[build-cuda] %s\n' "$*" >&2; }

# 1. toolkit from PyPI (once; cached)
if [[ ! -e "$STAMP" ]]; then
  log "installing CUDA 13.0 wheels into $CUDA_PIP_DIR (~700 MB download, 1.2 GiB on disk)"
  mkdir -p "$CUDA_PIP_DIR"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
      --target "$CUDA_PIP_DIR" "${WHEELS[@]}"
  rm -f "$CUDA_PIP_DIR"/.installed-*; touch "$STAMP"
fi
[[ -x "$CU/bin/nvcc" ]] || { log "nvcc missing at $CU/bin/nvcc"; exit 1; }

# 2. unversioned .so names for the linker (wheels only ship libX.so.N)
for so in cudart:13 cublas:13 cublasLt:13 nvrtc:13 curand:10; do
  n="${so%%:*}"; v="${so##*:}"
  [[ -e "$CU/lib/lib$n.so" ]] || ln -sf "lib$n.so.$v" "$CU/lib/lib$n.so"
done

# 3. libcuda.so link stub (SONAME libcuda.so.1; every function returns
#    CUDA_ERROR_STUB_LIBRARY=34). Used ONLY at link time; at run time the real
#    driver's libcuda.so.1 is loaded. Never put lib/stubs on LD_LIBRARY_PATH on a GPU box.
CUDARC_SRC="$( { cargo metadata --format-version 1 --features "$CUDA_FEATURES" 2>/dev/null \
  || cargo metadata --format-version 1 --all-features; } | "$PYTHON" -c '
import json, sys, os
m = json.load(sys.stdin)
p = [p for p in m["packages"] if p["name"] == "cudarc"]
print(os.path.dirname(p[0]["manifest_path"]) if p else "")')"
[[ -n "$CUDARC_SRC" ]] || { log "cudarc not in the dependency graph (is the cuda feature wired up?)"; exit 1; }
mkdir -p "$CU/lib/stubs"
if [[ ! -e "$CU/lib/stubs/libcuda.so" || "$CUDARC_SRC/src/driver/sys/mod.rs" -nt "$CU/lib/stubs/libcuda.so" ]]; then
  log "generating libcuda.so stub from $CUDARC_SRC"
  grep -ohE '^\s+fn cu[A-Za-z0-9_]+\(' "$CUDARC_SRC/src/driver/sys/mod.rs" \
    | sed -E 's/^\s+fn //; s/\($//' | sort -u \
    | awk '{printf "int %s(void){return 34;}\n", $1}' > "$CU/lib/stubs/libcuda_stub.c"
  gcc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 \
      -o "$CU/lib/stubs/libcuda.so" "$CU/lib/stubs/libcuda_stub.c"
fi

# 4. the build
export PATH="$CU/bin:$PATH"          # nvcc (cudaforge: NVCC/PATH/CUDA_HOME; cudarc: PATH only)
export CUDA_HOME="$CU"               # cudarc link search: $CUDA_HOME/{lib,lib/stubs}
export CUDA_COMPUTE_CAP              # cudaforge: no nvidia-smi here; 90 -> sm_90a
export CUDARC_CUDA_VERSION=13000     # pin cudarc bindings to CUDA 13.0 (skip nvcc parsing)
unset NVCC_CCBIN                     # system gcc 12 is a supported nvcc host compiler
# cudaforge compiles the .cu files with nproc/2 threads by default (=1 on a 2-core box)
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
log "cargo build --release --features $CUDA_FEATURES (compute cap $CUDA_COMPUTE_CAP, target dir $CUDA_TARGET_DIR)"
cargo build --release -p sweep-cli --features "$CUDA_FEATURES" --target-dir "$CUDA_TARGET_DIR" "$@"

# 5. report what each built binary needs at run time
for bin in "$CUDA_TARGET_DIR/release/sweep"; do
  log "$bin: $(du -h "$bin" | cut -f1)"
  log "  NEEDED: $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  log "  max GLIBC: $(objdump -T "$bin" | grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -1)"
  if [[ "${CUDA_SMOKE:-0}" == 1 ]]; then
    tmp="$(mktemp -d)"; ln -s "$CU/lib/stubs/libcuda.so" "$tmp/libcuda.so.1"
    log "  smoke run (stub driver, expect a clean 'no device' error):"
    # shellcheck disable=SC2086
    LD_LIBRARY_PATH="$CU/lib:$tmp" "$bin" ${CUDA_SMOKE_ARGS:-} || log "  exit code $?"
    rm -rf "$tmp"
  fi
  if [[ -n "${CUDA_DIST_DIR:-}" ]]; then
    mkdir -p "$CUDA_DIST_DIR"; name="$(basename "$bin")"
    strip -o "$CUDA_DIST_DIR/$name" "$bin"
    xz -T0 -6 -f "$CUDA_DIST_DIR/$name"
    log "  packed: $CUDA_DIST_DIR/$name.xz ($(du -h "$CUDA_DIST_DIR/$name.xz" | cut -f1)); unpack with: xz -dk $name.xz"
  fi
done
