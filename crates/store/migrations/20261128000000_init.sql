-- The results of every sweep: its file, its trials and every epoch of every trial.

CREATE TABLE sweeps (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    file_text  TEXT NOT NULL,            -- the sweep file as last run
    file_path  TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE trials (
    id           INTEGER PRIMARY KEY,
    sweep_id     INTEGER NOT NULL REFERENCES sweeps (id),
    grid_index   INTEGER NOT NULL,       -- position in the expanded grid (stable order)
    params       TEXT NOT NULL,          -- JSON: the grid point, e.g. {"lr":0.01,"neurons":64}
    config       TEXT NOT NULL,          -- JSON: the full resolved configuration
    config_hash  TEXT NOT NULL,          -- the trial's identity
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'done', 'failed', 'pruned', 'interrupted')),
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
CREATE INDEX trials_by_status ON trials (sweep_id, status);

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

-- The best epoch's confusion matrix, one row per non-zero cell.
CREATE TABLE confusion (
    trial_id  INTEGER NOT NULL REFERENCES trials (id),
    actual    INTEGER NOT NULL,
    predicted INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (trial_id, actual, predicted)
);
