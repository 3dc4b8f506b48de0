"""A command trial that CI runs: standard-library Python, no data, a known answer.

It "trains" by gradient descent on f(w) = (w - 3)^2 with the sweep's `lr` and `momentum`, for
SWEEP_EPOCHS epochs of `steps` steps, resumes from its checkpoint, and reports `val_loss` (the
distance to the optimum) and `score` = 1 / (1 + val_loss) each epoch. Run it by hand with
`python3 examples/quadratic/train.py`, or as a sweep with `sweep run examples/quadratic/sweep.toml`.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from sweep_trial import Trial  # noqa: E402

trial = Trial(defaults={"lr": 0.1, "momentum": 0.0, "steps": 5}, epochs=10)
lr, momentum, steps = trial.params["lr"], trial.params["momentum"], trial.params["steps"]
state = trial.load("state.json") or {"epoch": 0, "w": 0.0, "v": 0.0}
w, v = state["w"], state["v"]
for epoch in trial.epochs(start=state["epoch"]):
    for _ in range(steps):
        v = momentum * v - lr * 2 * (w - 3)
        w += v
    loss = (w - 3) ** 2
    trial.report(epoch, val_loss=loss, score=1 / (1 + loss), w=w)
    trial.save("state.json", {"epoch": epoch, "w": w, "v": v})
