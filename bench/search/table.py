"""The benchmark's tables: mean ± standard deviation (over seeds) of the best objective after
20, 50 and 100 trials, per function and method, from the CSV rows of bench.rs and
optuna_bench.py. Standard library only.

    python3 table.py sweep.csv optuna.csv
"""

import csv
import statistics
import sys
from collections import defaultdict

LABELS = {
    ("sweep_random", "1"): "sweep random",
    ("sweep_tpe", "1"): "sweep TPE, 1 slot",
    ("optuna_tpe", "1"): "Optuna TPE, 1 slot",
    ("sweep_tpe", "4"): "sweep TPE, 4 slots (window k−4)",
    ("sweep_tpe_lag8", "4"): "sweep TPE, 4 slots (window k−8)",
    ("optuna_tpe", "4"): "Optuna TPE, 4 slots (constant liar, window k−4)",
}
OPTIMA = {"branin": 0.397887, "hartmann6": -3.32237, "noisy_mixed": 0.0}


def main():
    rows = defaultdict(list)
    for path in sys.argv[1:]:
        with open(path) as f:
            for r in csv.DictReader(f):
                rows[(r["function"], r["method"], r["slots"])].append(
                    [float(r["best20"]), float(r["best50"]), float(r["best100"])]
                )
    for function in OPTIMA:
        print(f"\n**{function}** (optimum {OPTIMA[function]})\n")
        print("| method | seeds | after 20 | after 50 | after 100 |")
        print("| --- | --- | --- | --- | --- |")
        for (method, slots), label in LABELS.items():
            runs = rows.get((function, method, slots))
            if not runs:
                continue
            cells = []
            for b in range(3):
                xs = [r[b] for r in runs]
                cells.append(f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}")
            print(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
    print("\n**sweep TPE − Optuna TPE**, in standard errors of the difference (negative: sweep")
    print("found lower, i.e. better)\n")
    print("| function | slots | after 20 | after 50 | after 100 |")
    print("| --- | --- | --- | --- | --- |")
    for function in OPTIMA:
        for slots in ("1", "4"):
            ours = rows.get((function, "sweep_tpe", slots))
            theirs = rows.get((function, "optuna_tpe", slots))
            if not ours or not theirs:
                continue
            cells = []
            for b in range(3):
                xs, ys = [r[b] for r in ours], [r[b] for r in theirs]
                se = (statistics.variance(xs) / len(xs) + statistics.variance(ys) / len(ys)) ** 0.5
                cells.append(f"{(statistics.mean(xs) - statistics.mean(ys)) / se:+.2f}")
            print(f"| {function} | {slots} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
