# The everyday commands. `just --list` shows them.

# Build the release binary (target/release/sweep).
build:
    cargo build --release

# The README's test command, as CI runs it.
test:
    cargo build --release && cargo test --release --workspace

# Everything CI checks: formatting, lints and the tests.
ci:
    .ci/run

# The demo sweep: 12 small ResNets on the built-in synthetic data.
demo:
    cargo run --release -- run sweeps/quick.toml

# Time the training step of the seed's models (64x64, batch 64).
bench:
    cargo run --release -- bench

# The PyTorch reference on the same models (needs /tmp/torch-venv, see shared/bench/README.md).
bench-torch:
    THREADS=2 /tmp/torch-venv/bin/python ../shared/bench/torch_probe.py train-resnet 64
    THREADS=2 /tmp/torch-venv/bin/python ../shared/bench/torch_probe.py train-mlp 24
    THREADS=2 /tmp/torch-venv/bin/python ../shared/bench/torch_probe.py infer-resnet 64

# A CUDA-enabled release binary, built without a GPU (NVIDIA's PyPI wheels, CUDA 13.0), packed
# as target/cuda-dist/sweep.xz for a GPU machine.
build-cuda:
    scripts/build-cuda.sh

# The GPU check (on a GPU machine, with target/cuda-dist/sweep.xz carried there).
gpu-check:
    scripts/gpu-check.sh target/cuda-dist/sweep.xz
