#!/usr/bin/env bash
# The fidelity harness (`just fidelity`): the same recipe trained by sweep and by PyTorch
# (scripts/fidelity_reference.py) on the same image files, for several seeds and settings of
# the recipe's free choices, and per epoch the validation macro F1 of each side (mean, min,
# max over the seeds) side by side. Slow on a CPU: run it where there is time or a GPU.
#
# Settings, as environment variables:
#   DATA      the data set folder (default results/fidelity/data, written by `sweep data synth`
#             with SIZE, CLASSES, TRAIN, VAL when missing: 32, 100, 6000, 1000)
#   SEEDS     the seeds of each side (default "1 2 3")
#   EPOCHS    epochs per run (default 10)
#   SETTINGS  the init:fill pairs to compare (default "kaiming:nearest pytorch:constant");
#             the PyTorch side initialises and fills the same way (see the reference's --init)
#   OUT       where the runs go (default results/fidelity); finished runs are not repeated
#   TORCH_PYTHON  a python with torch, numpy and pillow (default /tmp/torch-venv/bin/python)
# The recipe: ResNet filters 32/64/128, dense 64, dropout 0.2, Adam 1e-3, batch 32, rotation
# 10°, shift 0.1, zoom 0.1, batch norm and Adam's ε at PyTorch's values.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/fidelity}
DATA=${DATA:-$OUT/data}
SEEDS=${SEEDS:-1 2 3}
EPOCHS=${EPOCHS:-10}
SETTINGS=${SETTINGS:-kaiming:nearest pytorch:constant}
TORCH_PYTHON=${TORCH_PYTHON:-/tmp/torch-venv/bin/python}
SWEEP=target/release/sweep
mkdir -p "$OUT"
cargo build --release --quiet
if [ ! -f "$DATA/train.csv" ]; then
    "$SWEEP" data synth --out "$DATA" --classes "${CLASSES:-100}" --size "${SIZE:-32}" \
        --train "${TRAIN:-6000}" --val "${VAL:-1000}" --test 100 --seed 7
fi
DATA=$(realpath "$DATA")
seeds_list=$(echo "$SEEDS" | sed 's/ \+/, /g')

for setting in $SETTINGS; do
    init=${setting%%:*} fill=${setting##*:}
    name="fidelity-$init-$fill"
    cat > "$OUT/$name.toml" <<TOML
# Written by scripts/fidelity.sh.
name = "$name"

[data]
dir = "$DATA"
augment = { rotation = 10.0, shift = 0.1, zoom = 0.1, fill = "$fill" }

[model]
arch = "resnet"
filters = [32, 64, 128]
neurons = 64
dropout = 0.2
init = "$init"

[train]
epochs = $EPOCHS
batch_size = 32
optimizer = "adam"
lr = 0.001

[grid]
seed = [$seeds_list]

[run]
devices = "cpu"
trials_per_device = 1
TOML
    echo "== sweep: $name" >&2
    "$SWEEP" run "$OUT/$name.toml" --db "$OUT/fidelity.db" --results "$OUT/runs" >&2
    for seed in $SEEDS; do
        log="$OUT/torch-$init-$fill-$seed.jsonl"
        if [ -f "$log" ] && [ "$(wc -l < "$log")" -ge "$EPOCHS" ]; then continue; fi
        echo "== pytorch: $init $fill seed $seed" >&2
        "$TORCH_PYTHON" scripts/fidelity_reference.py --data "$DATA" --seed "$seed" \
            --epochs "$EPOCHS" --init "$init" --fill "$fill" > "$log.part"
        mv "$log.part" "$log"
    done
done
python3 scripts/fidelity_table.py "$OUT" "$SETTINGS" "$SEEDS"
