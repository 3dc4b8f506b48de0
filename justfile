# The everyday commands. `just --list` shows them.

# Build the release binary (target/release/sweep).
build:
    cargo build --release

# The README's test command, as CI runs it.
test:
    cargo test --release --workspace

# Everything CI checks: formatting, lints and the tests.
ci:
    .ci/run

# The fuzz targets (crates/fuzz) round after round with a new seed each, `cases` per target per
# round, until Ctrl-C or a failure, which prints its seed and the smallest failing input
# (`SWEEP_FUZZ_SEED=… SWEEP_FUZZ_CASES=… cargo test --release -p sweep-fuzz` finds it again).
fuzz cases="20000":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo test --release -p sweep-fuzz --no-run
    for round in $(seq 1 1000000); do
        seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
        echo "round $round: SWEEP_FUZZ_SEED=$seed SWEEP_FUZZ_CASES={{cases}}"
        SWEEP_FUZZ_SEED=$seed SWEEP_FUZZ_CASES={{cases}} \
            cargo test --release -q -p sweep-fuzz -- --nocapture
    done

# The demo sweep: 12 small ResNets on the built-in synthetic data.
demo:
    cargo run --release -- run sweeps/quick.toml

# Time the training step of the seed's models (64x64, batch 64).
bench:
    cargo run --release -- bench

# `sweep bench` and the PyTorch/Keras references back to back, one table with the ratios
# (needs a torch and/or tensorflow venv: TORCH_PYTHON, default /tmp/torch-venv/bin/python;
# KERAS_PYTHON, default /tmp/tf-venv/bin/python; see shared/bench).
bench-compare:
    cargo build --release
    scripts/bench-compare.sh

# The search benchmark (bench/search/README.md): sweep's TPE and random search against
# Optuna's TPESampler (needs a venv with optuna: OPTUNA_PYTHON, default /tmp/imp-venv/bin/python).
bench-search seeds="30":
    mkdir -p results
    cargo run --release -q -p sweep-search --example bench -- {{seeds}} > results/search-sweep.csv
    ${OPTUNA_PYTHON:-/tmp/imp-venv/bin/python} bench/search/optuna_bench.py {{seeds}} > results/search-optuna.csv
    python3 bench/search/table.py results/search-sweep.csv results/search-optuna.csv
    cargo run --release -q -p sweep-search --example bench -- time
    ${OPTUNA_PYTHON:-/tmp/imp-venv/bin/python} bench/search/optuna_bench.py time

# A CUDA-enabled release binary, built without a GPU (NVIDIA's PyPI wheels, CUDA 13.0), packed
# as target/cuda-dist/sweep.xz for a GPU machine.
build-cuda:
    scripts/build-cuda.sh

# The GPU check (on a GPU machine, with target/cuda-dist/sweep.xz carried there).
gpu-check:
    scripts/gpu-check.sh target/cuda-dist/sweep.xz

# The fidelity harness: the same recipe trained by sweep and by PyTorch on the same files, per
# epoch validation F1 side by side (slow: ~40 min on 2 cores; see scripts/fidelity.sh for the
# settings, and TORCH_PYTHON).
fidelity:
    scripts/fidelity.sh
