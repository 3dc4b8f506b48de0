"""The command-trial contract of `sweep`, for Python programs: one file, standard library only.

Copy it next to your training script (or put this folder on PYTHONPATH) and:

    from sweep_trial import Trial

    trial = Trial(defaults={"lr": 0.001, "optimizer": "adam"})
    state = trial.load("state.json")             # your checkpoint, if an earlier run left one
    for epoch in trial.epochs(start=state["epoch"] if state else 0):
        ...                                      # train one epoch
        trial.report(epoch, val_acc=0.71, val_loss=0.92)  # report the epoch first,
        trial.save("state.json", {"epoch": epoch, ...})   # then checkpoint it
        if trial.stopping:                       # sweep asked it to stop: checkpoint kept
            break

Report an epoch before you checkpoint it: killed between the two, the program resumes from
the checkpoint before and trains that epoch again, which sweep records once. A checkpoint
ahead of the reports would resume past an epoch sweep never heard of, and fail the trial.

What `sweep` gives the program (the README's "Command trials" has the whole contract):
SWEEP_TRIAL_DIR, SWEEP_METRICS, SWEEP_PARAMS, SWEEP_EPOCHS, SWEEP_UNTIL_EPOCH, SWEEP_SEED,
SWEEP_DEVICE and SWEEP_THREADS. Run by hand, without them, a Trial uses its defaults, trains
in ./trial and prints its reports.
"""

import json
import math
import os
import signal
import sys
import tempfile


class Trial:
    """One trial as `sweep` runs it: its params, its epochs, where it keeps its files."""

    def __init__(self, defaults=None, epochs=None):
        env = os.environ
        self.params = dict(defaults or {})
        self.params.update(json.loads(env.get("SWEEP_PARAMS", "{}")))
        self.dir = env.get("SWEEP_TRIAL_DIR") or os.path.abspath("trial")
        os.makedirs(self.dir, exist_ok=True)
        self.metrics_path = env.get("SWEEP_METRICS")
        self.total_epochs = int(env.get("SWEEP_EPOCHS", epochs or 1))
        until = env.get("SWEEP_UNTIL_EPOCH")
        self.until_epoch = int(until) if until else None
        self.seed = int(env.get("SWEEP_SEED", self.params.get("seed", 0)))
        self.device = env.get("SWEEP_DEVICE", "cpu")
        self.threads = int(env.get("SWEEP_THREADS", os.cpu_count() or 1))
        self.stopping = False
        for name in ("SIGTERM", "SIGINT", "SIGUSR2"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self._stop)

    def _stop(self, signum, frame):
        self.stopping = True

    @property
    def last_epoch(self):
        """The last epoch to train in this run: the rung it pauses at, or the last of all."""
        if self.until_epoch is None:
            return self.total_epochs
        return min(self.until_epoch, self.total_epochs)

    def epochs(self, start=0):
        """The epochs to train in this run, after `start` (the epoch a checkpoint holds)."""
        epoch = start + 1
        while epoch <= self.last_epoch and not self.stopping:
            yield epoch
            epoch += 1

    def path(self, name):
        """Where to keep a file of this trial (a checkpoint, an output)."""
        return os.path.join(self.dir, name)

    def save(self, name, state):
        """Writes `state` as JSON to the trial's file `name`, whole or not at all."""
        fd, aside = tempfile.mkstemp(dir=self.dir, prefix="." + name)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(aside, self.path(name))

    def load(self, name):
        """The JSON state saved as `name` by an earlier run of this trial, or None."""
        try:
            with open(self.path(name)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def report(self, epoch, **metrics):
        """Reports epoch `epoch` (from 1) with its metrics, e.g. val_acc=0.71."""
        for key, value in metrics.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError("metric %s must be a finite number, not %r" % (key, value))
        line = json.dumps(dict(epoch=epoch, **{k: float(v) for k, v in metrics.items()}))
        if self.metrics_path is None:
            print(line)
            return
        with open(self.metrics_path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


if __name__ == "__main__":
    sys.exit("sweep_trial is a module: `from sweep_trial import Trial` in your training script")
