-- Pruning: a trial can be `paused` at a rung (checkpoint kept, waiting for the rung's
-- decision) and `stopped` (never promoted, or below the median); `until_epoch` is the epoch a
-- trial trains to this time (NULL: all of them); `decisions` records every pruning decision.
--
-- SQLite cannot change a CHECK constraint in place, and foreign keys cannot be switched off
-- inside the migration's transaction, so the three linked tables are rebuilt together:
-- renaming `trials` first makes the other two point at `trials_old`, and the new tables point
-- at the new `trials` again. Every row keeps its id.
ALTER TABLE trials RENAME TO trials_old;
ALTER TABLE epochs RENAME TO epochs_old;
ALTER TABLE confusion RENAME TO confusion_old;
DROP INDEX trials_by_status;
DROP INDEX trials_by_number;

CREATE TABLE trials (
    id           INTEGER PRIMARY KEY,
    sweep_id     INTEGER NOT NULL REFERENCES sweeps (id),
    number       INTEGER NOT NULL,       -- the trial's number in its sweep, from 1
    grid_index   INTEGER NOT NULL,       -- position in the expanded grid (stable order)
    params       TEXT NOT NULL,          -- JSON: the grid point, e.g. {"lr":0.01,"neurons":64}
    config       TEXT NOT NULL,          -- JSON: the full resolved configuration
    config_hash  TEXT NOT NULL,          -- the trial's identity
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'paused', 'done', 'stopped', 'failed',
                                   'interrupted')),
    until_epoch  INTEGER,                -- train to this epoch this time (NULL: to the end)
    device       TEXT,                   -- where it ran last: cpu, cuda:0, …
    attempts     INTEGER NOT NULL DEFAULT 0,
    runner       TEXT,                   -- the `sweep run` process that holds it
    heartbeat_at REAL,                   -- unix seconds; a running trial without news is stale
    started_at   TEXT,
    finished_at  TEXT,
    error        TEXT,
    best_epoch   INTEGER,
    objective    REAL,
    checkpoint   TEXT,                   -- the best checkpoint's path
    UNIQUE (sweep_id, config_hash)
);
INSERT INTO trials (id, sweep_id, number, grid_index, params, config, config_hash, status,
                    device, attempts, runner, heartbeat_at, started_at, finished_at, error,
                    best_epoch, objective, checkpoint)
SELECT id, sweep_id, number, grid_index, params, config, config_hash,
       CASE status WHEN 'pruned' THEN 'stopped' ELSE status END,
       device, attempts, runner, heartbeat_at, started_at, finished_at, error,
       best_epoch, objective, checkpoint
FROM trials_old;
CREATE INDEX trials_by_status ON trials (sweep_id, status);
CREATE UNIQUE INDEX trials_by_number ON trials (sweep_id, number);

CREATE TABLE epochs (
    trial_id   INTEGER NOT NULL REFERENCES trials (id),
    epoch      INTEGER NOT NULL,         -- from 1
    train_loss REAL NOT NULL,
    train_acc  REAL NOT NULL,
    val_loss   REAL NOT NULL,
    val_acc    REAL NOT NULL,
    val_f1     REAL NOT NULL,
    lr         REAL NOT NULL,
    seconds    REAL NOT NULL,
    PRIMARY KEY (trial_id, epoch)
);
INSERT INTO epochs SELECT * FROM epochs_old;

-- The best epoch's confusion matrix, one row per non-zero cell.
CREATE TABLE confusion (
    trial_id  INTEGER NOT NULL REFERENCES trials (id),
    actual    INTEGER NOT NULL,
    predicted INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (trial_id, actual, predicted)
);
INSERT INTO confusion SELECT * FROM confusion_old;

DROP TABLE epochs_old;
DROP TABLE confusion_old;
DROP TABLE trials_old;

-- Every pruning decision: which trial, after which epoch, what was decided and the cutoff
-- (the rung's last promoted value, or the median) it was measured against.
CREATE TABLE decisions (
    id        INTEGER PRIMARY KEY,
    trial_id  INTEGER NOT NULL REFERENCES trials (id),
    epoch     INTEGER NOT NULL,
    decision  TEXT NOT NULL CHECK (decision IN ('promote', 'stop')),
    value     REAL,                      -- the trial's objective that was judged
    cutoff    REAL,
    reason    TEXT NOT NULL,             -- in words, as `sweep show` prints it
    at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX decisions_by_trial ON decisions (trial_id);
