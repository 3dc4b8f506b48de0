"""The seed's scaled-down ResNet in PyTorch, as a sweep command trial.

A Kaggle-layout folder (train.csv and train_images/, val.csv and val_images/, `Image,Class`),
a ResNet of three stages of two residual blocks (widths `filters`, the first block of each
stage with a projection skip), a dense head of `neurons` with dropout, trained with `optimizer`
at `lr`; each epoch it reports train_loss, train_acc, val_loss, val_acc and val_f1 (macro F1),
then checkpoints model, optimizer and RNG state to last.pt in its trial folder, from which a
resumed or promoted trial goes on. Needs torch, numpy and pillow (requirements.txt).

    sweep run examples/pytorch/sweep.toml        # the sweep
    python3 examples/pytorch/train.py            # one trial by hand, with the defaults below
"""

import csv
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from sweep_trial import Trial  # noqa: E402

trial = Trial(
    defaults={
        "data": "data/synth",
        "filters": [64, 128, 256],
        "neurons": 32,
        "dropout": 0.5,
        "optimizer": "adam",
        "lr": 0.001,
        "batch_size": 64,
        "seed": 42,
    },
    epochs=3,
)
p = trial.params
torch.set_num_threads(trial.threads)
torch.manual_seed(trial.seed)
device = torch.device("cuda" if trial.device.startswith("cuda") else "cpu")


def load(split):
    """A split's images as a float tensor (N, 3, H, W) in [0, 1] and its labels."""
    folder = p["data"]
    names = {"train": ["train.csv"], "val": ["val.csv", "validation.csv"]}[split]
    path = next(os.path.join(folder, n) for n in names if os.path.exists(os.path.join(folder, n)))
    with open(path) as f:
        rows = list(csv.DictReader(f))
    images, labels = [], []
    for row in rows:
        row = {k.lower(): v for k, v in row.items()}
        name = row.get("image") or row["image_id"]
        name = name if name.endswith(".png") else name + ".png"
        image = Image.open(os.path.join(folder, split + "_images", name)).convert("RGB")
        images.append(np.asarray(image, dtype=np.float32) / 255.0)
        labels.append(int(row.get("class") or row["label"]))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, project):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.b2 = nn.BatchNorm2d(cout)
        self.proj = nn.Conv2d(cin, cout, 1, stride) if project else None

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


class ResNet(nn.Module):
    def __init__(self, filters, neurons, dropout, classes):
        super().__init__()
        self.stem = nn.Conv2d(3, filters[0], 7, 2, 3)
        self.bn = nn.BatchNorm2d(filters[0])
        blocks, cin = [], filters[0]
        for i, f in enumerate(filters):
            blocks += [Block(cin, f, 1 if i == 0 else 2, True), Block(f, f, 1, False)]
            cin = f
        self.blocks = nn.Sequential(*blocks)
        self.fc1 = nn.Linear(cin, neurons)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(neurons, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.stem(x))), 2, 2)
        x = self.blocks(x).mean(dim=(2, 3))
        return self.fc2(self.drop(F.relu(self.fc1(x))))


def macro_f1(pred, labels, classes):
    f1 = []
    for c in range(classes):
        tp = ((pred == c) & (labels == c)).sum().item()
        fp = ((pred == c) & (labels != c)).sum().item()
        fn = ((pred != c) & (labels == c)).sum().item()
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(f1) / classes


train_x, train_y = load("train")
val_x, val_y = load("val")
classes = int(max(train_y.max(), val_y.max())) + 1
model = ResNet(p["filters"], p["neurons"], p["dropout"], classes).to(device)
make = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
optimizer = make[p["optimizer"]](model.parameters(), lr=p["lr"])

start = 0
checkpoint = trial.path("last.pt")
if os.path.exists(checkpoint):
    state = torch.load(checkpoint, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    start = state["epoch"]

for epoch in trial.epochs(start=start):
    began = time.perf_counter()
    model.train()
    order = torch.randperm(len(train_x))
    total, correct, loss_sum = 0, 0, 0.0
    for i in range(0, len(order), p["batch_size"]):
        batch = order[i : i + p["batch_size"]]
        x, y = train_x[batch].to(device), train_y[batch].to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(batch)
        correct += (logits.argmax(1) == y).sum().item()
        total += len(batch)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(val_x[i : i + 256].to(device)) for i in range(0, len(val_x), 256)])
        val_loss = F.cross_entropy(logits, val_y.to(device)).item()
        pred = logits.argmax(1).cpu()
    trial.report(
        epoch,
        train_loss=loss_sum / total,
        train_acc=correct / total,
        val_loss=val_loss,
        val_acc=(pred == val_y).float().mean().item(),
        val_f1=macro_f1(pred, val_y, classes),
        seconds=time.perf_counter() - began,
    )
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
         "rng": torch.get_rng_state(), "epoch": epoch},
        checkpoint + ".new",
    )
    os.replace(checkpoint + ".new", checkpoint)
