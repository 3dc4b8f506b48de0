"""Trains in PyTorch the recipe that `scripts/fidelity.sh` also runs through sweep, on the same
image files, and prints each epoch's validation macro F1 as one JSON line.

The network is sweep's ResNet (`block_dense_reference.py`, the same layers and names); the
recipe is sweep's: per-channel normalisation by the training pixels' mean and standard
deviation (0–1 scale), Adam, cross-entropy averaged over the batch, the training set shuffled
every epoch and the last short batch kept, dropout before the output layer, and the random
rotation / shift / zoom drawn per image as sweep's `Augment::draw` draws them (uniform in
±rotation degrees, ±shift of the size on each axis, scale in [1 − zoom, 1 + zoom]) and
resampled bilinearly with `grid_sample` before normalisation, outside the image either the
edge pixels (`--fill nearest`, padding "border") or black (`--fill constant`, padding "zeros").
The map from output to source pixel is `data/augment.rs`'s `Transform`, the one its test
checks against Keras and torchvision.

`--init`: "pytorch" leaves PyTorch's own initialisation (Kaiming-uniform with a = √5, fan-in
biases); "kaiming" draws every conv and linear weight Kaiming-normal (std √(2 / fan_in)) and
biases in ±1/√fan_in, as candle-nn; "keras" Glorot-uniform weights and zero biases.

Usage: python scripts/fidelity_reference.py --data DIR --seed 1 [--epochs 15] ...
Needs torch, numpy and pillow.
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from block_dense_reference import ResNet  # noqa: E402


def load(data, split):
    with open(os.path.join(data, f"{split}.csv")) as f:
        rows = list(csv.reader(f))[1:]
    images = np.stack([np.asarray(Image.open(os.path.join(data, f"{split}_images", name))
                                  .convert("RGB")) for name, _ in rows])
    labels = np.array([int(label) for _, label in rows])
    return images, labels  # N × H × W × 3 (u8), N


def init_weights(net, scheme):
    if scheme == "pytorch":
        return
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
            if scheme == "kaiming":
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    bound = 1.0 / math.sqrt(fan_in)
                    nn.init.uniform_(m.bias, -bound, bound)
            elif scheme == "keras":
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            else:
                sys.exit(f"unknown init {scheme}")


def augment(x, args, gen):
    """Random rotation, shift and zoom of a batch of raw images (N × 3 × S × S, 0–255)."""
    n = x.shape[0]
    u = lambda lo, hi: torch.rand(n, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    angle = torch.deg2rad(u(-args.rotation, args.rotation))
    shift_x, shift_y = u(-args.shift, args.shift), u(-args.shift, args.shift)
    scale = u(1 - args.zoom, 1 + args.zoom)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # source − c = M · ((o − c) − shift · S) / scale, M = [[cos, sin], [−sin, cos]] in (x, y);
    # in grid_sample's normalised coordinates (align_corners=False) S becomes 2.
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos / scale, sin / scale
    theta[:, 1, 0], theta[:, 1, 1] = -sin / scale, cos / scale
    theta[:, 0, 2] = -(cos * shift_x * 2 + sin * shift_y * 2) / scale
    theta[:, 1, 2] = -(-sin * shift_x * 2 + cos * shift_y * 2) / scale
    grid = F.affine_grid(theta.float(), list(x.shape), align_corners=False)
    padding = "border" if args.fill == "nearest" else "zeros"
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def macro_f1(pred, true, classes):
    """scikit-learn's f1_score(average="macro"): over the labels in either array."""
    f1s = []
    for c in np.union1d(pred, true):
        tp = np.sum((pred == c) & (true == c))
        fp, fn = np.sum((pred == c) & (true != c)), np.sum((pred != c) & (true == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--filters", default="32,64,128")
    p.add_argument("--neurons", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--init", default="pytorch", choices=["pytorch", "kaiming", "keras"])
    p.add_argument("--bn-momentum", type=float, default=0.1)
    p.add_argument("--bn-eps", type=float, default=1e-5)
    p.add_argument("--rotation", type=float, default=10.0)
    p.add_argument("--shift", type=float, default=0.1)
    p.add_argument("--zoom", type=float, default=0.1)
    p.add_argument("--fill", default="nearest", choices=["nearest", "constant"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train_x, train_y = load(args.data, "train")
    val_x, val_y = load(args.data, "val")
    classes = int(max(train_y.max(), val_y.max())) + 1
    pixels = train_x.reshape(-1, 3).astype(np.float64) / 255.0
    mean = torch.tensor(pixels.mean(0), dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(np.maximum(pixels.std(0), 1e-3), dtype=torch.float32).view(1, 3, 1, 1)
    to_chw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float()
    train_raw, val_raw = to_chw(train_x), to_chw(val_x)
    val_in = (val_raw / 255.0 - mean) / std
    model = {"filters": [int(f) for f in args.filters.split(",")], "neurons": args.neurons,
             "dropout": args.dropout}
    net = ResNet(model, classes)
    init_weights(net, args.init)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum, m.eps = args.bn_momentum, args.bn_eps
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=args.eps)
    labels = torch.from_numpy(train_y)
    active = args.rotation or args.shift or args.zoom
    for epoch in range(1, args.epochs + 1):
        started = time.time()
        net.train()
        order = torch.randperm(len(train_y), generator=gen)
        total, batches = 0.0, 0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            x = train_raw[idx]
            if active:
                x = augment(x, args, gen)
            x = (x / 255.0 - mean) / std
            loss = F.cross_entropy(net(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, batches = total + loss.item(), batches + 1
        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(val_in[i:i + 256]) for i in range(0, len(val_in), 256)])
        pred = logits.argmax(1).numpy()
        print(json.dumps({"epoch": epoch, "train_loss": total / batches,
                          "val_f1": macro_f1(pred, val_y, classes),
                          "seconds": round(time.time() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
