"""Checks sweep's ResNet (with or without `block_dense`) against PyTorch on the same weights.

It rebuilds the network a checkpoint describes (the `model` in its `sweep` metadata) in
PyTorch, loads the checkpoint's `model.*` tensors into it (every name and shape must match:
conv weights are stored O×I×kH×kW, PyTorch's layout; dense weights out×in, as nn.Linear),
and runs it in evaluation mode.

- With a checkpoint that also holds `input`, `labels` and `logits` (what the model crate's
  test `block_dense_logits_match_pytorch_on_the_same_weights` writes when
  SWEEP_BLOCK_DENSE_REFERENCE is set), it compares PyTorch's logits, predicted labels and
  cross-entropy loss with the Rust ones, prints the largest logit difference, and prints
  PyTorch's logits as the Rust array that test pastes as TORCH_LOGITS.
- With a trial's best.safetensors and `--predictions CSV --images FOLDER` (what
  `sweep predict SWEEP --split val --out CSV` wrote, and the folder of those images, e.g. from
  `sweep data synth`), it normalises the images with the checkpoint's statistics, predicts
  them in PyTorch and counts the labels that differ from sweep's.
- With any other checkpoint, it checks that the weights load and prints a random batch's logits.

Usage:
  SWEEP_BLOCK_DENSE_REFERENCE=/tmp/block_dense_reference.safetensors \
      cargo test --release --workspace -- block_dense_logits_match_pytorch
  python scripts/block_dense_reference.py /tmp/block_dense_reference.safetensors
  python scripts/block_dense_reference.py results/SWEEP/trials/ID/best.safetensors \
      --predictions val-pred.csv --images synth/val_images
Needs torch, numpy and safetensors (and pillow for --images). Exits 1 when the logits differ
by more than 1e-4 or a predicted label differs.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

TOLERANCE = 1e-4
BN_EPS = 1e-5  # crates/model/src/nn/resnet.rs: BN


class ResidualBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN → add the skip → ReLU (resnet.rs ResidualBlock)."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        # The same rule as Rust: a projection only where the shape changes.
        projects = c_in != c_out or stride != 1
        self.skip = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=True) if projects else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = self.skip(x) if self.skip is not None else x
        return F.relu(y + s)


def block_name(index):
    """resnet.rs block_name: `project`, `identity`, `identity2`, `identity3`, …"""
    return ["project", "identity"][index] if index < 2 else f"identity{index}"


class Stage(nn.Module):
    """A projection block, `blocks − 1` identity blocks (the seed's one by default) and, with
    block_dense, relu(1×1 conv + bias)."""

    def __init__(self, c_in, c_out, stride, neurons, block_dense, blocks=2):
        super().__init__()
        self.blocks = blocks
        for i in range(blocks):
            block = ResidualBlock(c_in, c_out, stride) if i == 0 else ResidualBlock(c_out, c_out, 1)
            self.add_module(block_name(i), block)
        self.dense = nn.Conv2d(c_out, neurons, 1, 1, 0, bias=True) if block_dense else None

    def forward(self, x):
        for i in range(self.blocks):
            x = getattr(self, block_name(i))(x)
        return F.relu(self.dense(x)) if self.dense is not None else x


class ResNet(nn.Module):
    """resnet.rs ResNet: 7×7/2 stem → BN → ReLU → 2×2/2 max pool → stages → mean → head."""

    def __init__(self, model, classes):
        super().__init__()
        filters, neurons = model["filters"], model["neurons"]
        block_dense = model.get("block_dense", False)
        blocks = model.get("blocks") or [2] * len(filters)
        self.stem = nn.Conv2d(3, filters[0], 7, 2, 3, bias=False)
        self.stem_bn = nn.BatchNorm2d(filters[0], eps=BN_EPS)
        c_in = filters[0]
        for i, c_out in enumerate(filters):
            stage = Stage(c_in, c_out, 1 if i == 0 else 2, neurons, block_dense, blocks[i])
            self.add_module(f"stage{i}", stage)
            c_in = neurons if block_dense else c_out
        self.stages = len(filters)
        self.head = nn.Linear(c_in, neurons)
        self.dropout = nn.Dropout(model["dropout"])
        self.output = nn.Linear(neurons, classes)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        if x.shape[2] >= 2:
            x = F.max_pool2d(x, 2, 2)
        for i in range(self.stages):
            x = getattr(self, f"stage{i}")(x)
        x = x.mean(dim=(2, 3))
        return self.output(self.dropout(F.relu(self.head(x))))


def compare_predictions(net, meta, predictions, images):
    """Predicts the images of sweep's prediction CSV in PyTorch; exits 1 on any difference."""
    from PIL import Image

    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    mean = np.array(meta["norm"]["mean"], dtype=np.float32)[:, None, None]
    std = np.array(meta["norm"]["std"], dtype=np.float32)[:, None, None]
    pixels = np.stack([np.asarray(Image.open(os.path.join(images, r["Image"])).convert("RGB"))
                       for r in rows])
    x = (pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - mean) / std
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).argmax(1).tolist()
    theirs = [int(r["Class"]) for r in rows]
    differ = sum(a != b for a, b in zip(ours, theirs))
    print(f"{len(rows)} images of {predictions}: {differ} predicted labels differ "
          f"between sweep and PyTorch")
    if differ:
        sys.exit("FAIL: the predictions differ")
    print("OK")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--predictions", help="a CSV from `sweep predict` with this checkpoint")
    parser.add_argument("--images", help="the folder of the CSV's images")
    args = parser.parse_args()
    path = args.checkpoint
    with safe_open(path, "np") as f:
        meta = json.loads(f.metadata()["sweep"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model, classes = meta["model"], meta["classes"]
    if model["arch"] != "resnet":
        sys.exit(f"{path}: a {model['arch']} checkpoint; this script rebuilds the resnet")
    net = ResNet(model, classes)
    weights = {k[len("model."):]: torch.from_numpy(v.copy()) for k, v in tensors.items()
               if k.startswith("model.")}
    # BatchNorm's step counter is PyTorch's own; sweep has none (momentum is fixed).
    expected = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    missing, unexpected = expected - weights.keys(), weights.keys() - expected
    if missing or unexpected:
        sys.exit(f"{path}: names differ: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    net.load_state_dict(weights, strict=False)
    net.eval()
    print(f"{path}: {json.dumps(model)}, {classes} classes, "
          f"{sum(v.size for k, v in tensors.items() if k.startswith('model.'))} parameters and statistics")

    if args.predictions:
        compare_predictions(net, meta, args.predictions, args.images)
        return
    if "input" not in tensors:
        size = meta["size"]
        x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            print("weights load; logits of a random batch:\n", net(x).numpy())
        return

    x = torch.from_numpy(tensors["input"].copy())
    labels = torch.from_numpy(tensors["labels"].astype(np.int64))
    rust = torch.from_numpy(tensors["logits"].copy())
    with torch.no_grad():
        ours = net(x)
        ours64 = net.double()(x.double())
    diff = (ours - rust).abs().max().item()
    diff64 = (ours64 - rust.double()).abs().max().item()
    rust_loss = F.cross_entropy(rust, labels).item()
    torch_loss = F.cross_entropy(ours, labels).item()
    same_labels = torch.equal(ours.argmax(1), rust.argmax(1))
    print(f"{x.shape[0]} images of {tuple(x.shape[1:])}, logits {tuple(rust.shape)}")
    print(f"max |torch - rust| logit difference: {diff:.3g} (float32), {diff64:.3g} (torch in float64)")
    print(f"predicted labels: rust {rust.argmax(1).tolist()}, torch {ours.argmax(1).tolist()}")
    print(f"cross-entropy: rust {rust_loss:.6f}, torch {torch_loss:.6f}")
    rows = ",\n".join("    [" + ", ".join(f"{v:.7}" for v in row) + "]" for row in ours.tolist())
    print(f"TORCH_LOGITS for crates/model/src/nn/resnet.rs:\n[\n{rows},\n]")
    if diff > TOLERANCE or not same_labels:
        sys.exit(f"FAIL: the logits differ by {diff:.3g} > {TOLERANCE}")
    print("OK")


if __name__ == "__main__":
    main()
