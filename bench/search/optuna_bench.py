"""Optuna 5's TPESampler with its defaults on the benchmark's objectives (the benchmark only:
sweep never runs Python). Same objectives, budgets and output rows as
crates/search/examples/bench.rs.

    python optuna_bench.py SEEDS > optuna.csv   # best after 20, 50, 100 trials
    python optuna_bench.py time                 # one suggestion at 1,000 and 10,000 trials

4 slots: ask/tell with the sampler's default constant liar and the windowed completions
sweep uses: trial k is asked after trials 0..=k-4 are told, so trials k-3..k-1 are running
(pending) when k is sampled.
"""

import math
import sys
import time

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

optuna.logging.set_verbosity(optuna.logging.ERROR)

BUDGETS = (20, 50, 100)


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
P = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
]


def hartmann6(p):
    x = [p[f"x{j + 1}"] for j in range(6)]
    return -sum(
        ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6)))
        for i in range(4)
    )


OPTIMIZERS = ["adam", "sgd", "rmsprop"]


def mixed(p):
    o = OPTIMIZERS.index(p["optimizer"])
    best_lr = [-3.0, -1.5, -3.5][o]
    offset = [0.0, 0.1, 0.05][o]
    return (
        0.5 * (math.log10(p["lr"]) - best_lr) ** 2
        + 0.05 * (math.log2(p["neurons"]) - 7) ** 2
        + (p["dropout"] - 0.3) ** 2
        + offset
    )


OBJECTIVES = [
    ("branin", {"x1": FloatDistribution(-5, 10), "x2": FloatDistribution(0, 15)}, branin, 0.0),
    ("hartmann6", {f"x{j + 1}": FloatDistribution(0, 1) for j in range(6)}, hartmann6, 0.0),
    (
        "noisy_mixed",
        {
            "lr": FloatDistribution(1e-5, 1.0, log=True),
            "neurons": IntDistribution(8, 512, log=True),
            "optimizer": CategoricalDistribution(OPTIMIZERS),
            "dropout": FloatDistribution(0, 0.9),
        },
        mixed,
        0.1,
    ),
]


def run(space, f, noise, seed, slots):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    rng = np.random.RandomState(10_000 + seed)
    asked, trials = [], []
    for k in range(BUDGETS[-1]):
        if k >= slots:
            j = k - slots
            study.tell(asked[j], trials[j][1])
        trial = study.ask(space)
        truth = f(trial.params)
        trials.append((trial.params, truth + noise * rng.normal(), truth))
        asked.append(trial)
    best = []
    for budget in BUDGETS:
        best.append(min(trials[:budget], key=lambda t: t[1])[2])
    return best


def time_suggestions():
    name, space, f, _ = OBJECTIVES[1]
    rng = np.random.RandomState(1)
    for n in (1_000, 10_000):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
        trials = []
        for _ in range(n):
            params = {k: float(rng.uniform(0, 1)) for k in space}
            trials.append(
                optuna.trial.create_trial(params=params, distributions=space, value=f(params))
            )
        study.add_trials(trials)
        times = []
        for _ in range(3 if n > 5_000 else 7):
            start = time.perf_counter()
            trial = study.ask(space)
            times.append((time.perf_counter() - start) * 1e3)
            study.tell(trial, f(trial.params))
        times.sort()
        print(
            f"Optuna {optuna.__version__} TPESampler, {name} (6 dims), {n} trials: "
            f"median {times[len(times) // 2]:.1f} ms, min {times[0]:.1f} ms over {len(times)}"
        )


def main():
    arg = sys.argv[1] if len(sys.argv) > 1 else "30"
    if arg == "time":
        time_suggestions()
        return
    print("method,function,slots,seed,best20,best50,best100")
    for name, space, f, noise in OBJECTIVES:
        for seed in range(int(arg)):
            for slots in (1, 4):
                best = run(space, f, noise, seed, slots)
                print(f"optuna_tpe,{name},{slots},{seed},{best[0]},{best[1]},{best[2]}", flush=True)


if __name__ == "__main__":
    main()
