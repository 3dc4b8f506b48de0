"""Prints scripts/fidelity.sh's table: per setting and epoch, validation macro F1 (mean, min,
max over the seeds) of sweep (from the results database) and of PyTorch (its JSON lines).

Usage: python3 scripts/fidelity_table.py OUT "init:fill ..." "seed ..."
"""
import json
import os
import sqlite3
import sys


def stats(values):
    if not values:
        return "—"
    return f"{sum(values) / len(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main():
    out, settings, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
    db = sqlite3.connect(f"file:{os.path.join(out, 'fidelity.db')}?mode=ro", uri=True)
    for setting in settings:
        init, fill = setting.split(":")
        name = f"fidelity-{init}-{fill}"
        ours = {}  # epoch → [val_f1 per seed]
        for epoch, f1 in db.execute(
                "SELECT e.epoch, e.val_f1 FROM epochs e JOIN trials t ON t.id = e.trial_id "
                "JOIN sweeps s ON s.id = t.sweep_id WHERE s.name = ? ORDER BY e.epoch", (name,)):
            ours.setdefault(epoch, []).append(f1)
        theirs = {}
        for seed in seeds:
            path = os.path.join(out, f"torch-{init}-{fill}-{seed}.jsonl")
            if os.path.exists(path):
                for line in open(path):
                    row = json.loads(line)
                    theirs.setdefault(row["epoch"], []).append(row["val_f1"])
        print(f"\ninit = {init}, fill = {fill}: validation macro F1, mean (min–max) of "
              f"{len(seeds)} seeds")
        print("| epoch | sweep | PyTorch |")
        print("| --- | --- | --- |")
        for epoch in sorted(set(ours) | set(theirs)):
            print(f"| {epoch} | {stats(ours.get(epoch, []))} | {stats(theirs.get(epoch, []))} |")


if __name__ == "__main__":
    main()
