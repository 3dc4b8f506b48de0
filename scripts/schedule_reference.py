"""Computes with torch.optim.lr_scheduler the learning rates that sweep's schedule test checks.

Each case below is one `[train]` setting of sweep's schedules (`crates/model/src/train/
schedule.rs`). The script runs it in PyTorch (float64, on a one-parameter SGD optimizer: a
scheduler only reads and writes the parameter group's `lr`) and records the learning rate
every epoch (every batch for one-cycle) trains with. It writes them, with the cases, to
`schedule_reference.json` in OUT_DIR; the Rust test rebuilds each case from the JSON and
compares its rates to PyTorch's, to a relative 1e-12.

How sweep's keys map onto torch's schedulers:

- `warmup_epochs = W`: `LinearLR(start_factor=1/(W+1), end_factor=1, total_iters=W)` for the
  first W epochs (epoch e ≤ W trains at lr·e/(W+1)), then the schedule, from `lr`, at epoch
  W+1: `SequentialLR(schedulers=[warmup, schedule], milestones=[W])`. For plateau, which
  SequentialLR cannot hold (its `step` takes the objective), the warmup is stepped alone for
  W epochs and ReduceLROnPlateau only after that.
- `cosine`: `CosineAnnealingLR(T_max=epochs−W, eta_min=min_lr)`.
- `step`: `StepLR(step_size, gamma)`.
- `plateau`: `ReduceLROnPlateau(mode="max" for val_f1/val_acc, "min" for val_loss, factor,
  patience=plateau_patience, threshold=0, cooldown=0, min_lr, eps=1e-8)`, stepped with each
  epoch's objective (the case's `objectives`) after that epoch.
- `onecycle`: `OneCycleLR(max_lr, total_steps=epochs·batches, pct_start=0.3,
  anneal_strategy="cos", cycle_momentum=False, div_factor=max_lr/lr,
  final_div_factor=lr/min_lr (∞ at min_lr 0), three_phase=False)`, stepped after each batch.

Usage:
  /tmp/torch-venv/bin/python scripts/schedule_reference.py crates/model/tests/fixtures
Needs torch.
"""

import json
import math
import sys
from pathlib import Path

import torch
from torch.optim import lr_scheduler as sched

CASES = [
    dict(name="constant_warmup", schedule="constant", lr=0.1, epochs=6, warmup_epochs=2),
    dict(name="cosine", schedule="cosine", lr=0.05, epochs=10),
    dict(name="cosine_warmup", schedule="cosine", lr=0.1, epochs=12, warmup_epochs=3,
         min_lr=1e-3),
    dict(name="step_warmup", schedule="step", lr=0.1, epochs=12, warmup_epochs=2,
         step_size=3, gamma=0.5),
    dict(name="step", schedule="step", lr=0.01, epochs=9, step_size=2),
    # val_f1 (maximised): better at 2, 3, 7; stalls long enough for reductions and the floor.
    dict(name="plateau", schedule="plateau", lr=0.1, epochs=16, factor=0.5,
         plateau_patience=2, min_lr=0.02, minimised=False,
         objectives=[0.1, 0.2, 0.25, 0.25, 0.24, 0.23, 0.3, 0.3, 0.29, 0.28, 0.3, 0.27,
                     0.26, 0.31, 0.2, 0.2]),
    # val_loss (minimised), after a warmup; torch's default factor and a patience of 1.
    dict(name="plateau_warmup", schedule="plateau", lr=0.05, epochs=12, warmup_epochs=2,
         plateau_patience=1, minimised=True,
         objectives=[3.0, 2.5, 2.0, 1.9, 1.95, 1.9, 1.8, 1.85, 1.86, 1.7, 1.71, 1.72]),
    dict(name="onecycle", schedule="onecycle", lr=0.004, epochs=4, batches=5, max_lr=0.1),
    dict(name="onecycle_min_lr", schedule="onecycle", lr=0.01, epochs=3, batches=7,
         max_lr=0.2, min_lr=1e-5),
]


def rates(case):
    """The lr of each epoch (each batch for onecycle), as torch's schedulers set it."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    lr, epochs = case["lr"], case["epochs"]
    opt = torch.optim.SGD([param], lr=lr)
    current = lambda: opt.param_groups[0]["lr"]
    kind = case["schedule"]
    if kind == "onecycle":
        batches, min_lr = case["batches"], case.get("min_lr", 0.0)
        max_lr = case["max_lr"]
        final = lr / min_lr if min_lr > 0 else math.inf
        one = sched.OneCycleLR(opt, max_lr=max_lr, total_steps=epochs * batches,
                               pct_start=0.3, anneal_strategy="cos", cycle_momentum=False,
                               div_factor=max_lr / lr, final_div_factor=final,
                               three_phase=False)
        out = []
        for _ in range(epochs * batches):
            out.append(current())
            opt.step()
            one.step()
        return out
    w = case.get("warmup_epochs", 0)
    warmup = sched.LinearLR(opt, start_factor=1 / (w + 1), end_factor=1.0,
                            total_iters=w) if w else None
    if kind == "plateau":
        plateau = sched.ReduceLROnPlateau(
            opt, mode="min" if case["minimised"] else "max", factor=case.get("factor", 0.1),
            patience=case.get("plateau_patience", 10), threshold=0.0, threshold_mode="rel",
            cooldown=0, min_lr=case.get("min_lr", 0.0), eps=1e-8)
        out = []
        for e in range(1, epochs + 1):
            out.append(current())
            opt.step()
            if e <= w:
                warmup.step()
            else:
                plateau.step(case["objectives"][e - 1])
        return out
    if kind == "constant":
        main = sched.ConstantLR(opt, factor=1.0, total_iters=0)
    elif kind == "cosine":
        main = sched.CosineAnnealingLR(opt, T_max=epochs - w, eta_min=case.get("min_lr", 0.0))
    elif kind == "step":
        main = sched.StepLR(opt, step_size=case["step_size"], gamma=case.get("gamma", 0.1))
    else:
        sys.exit(f"unknown schedule {kind}")
    whole = sched.SequentialLR(opt, [warmup, main], milestones=[w]) if warmup else main
    out = []
    for _ in range(epochs):
        out.append(current())
        opt.step()
        whole.step()
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    torch.set_default_dtype(torch.float64)
    cases = [dict(case, lrs=rates(case)) for case in CASES]
    text = json.dumps({"torch": torch.__version__, "cases": cases}, indent=1)
    (out / "schedule_reference.json").write_text(text + "\n")
    for case in cases:
        print(case["name"], " ".join(f"{r:.6g}" for r in case["lrs"]))


if __name__ == "__main__":
    main()
