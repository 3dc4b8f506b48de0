-- Any metric a trial reports: a command trial's program names its own metrics, so the
-- built-in trainer's columns may be empty (NULL: the epoch did not report it), and every other
-- metric goes in `metrics`, a JSON object of name -> number (NULL: none). A metric of the
-- built-in trainer's name (`val_acc`, `lr`, ...) always goes in its column, so queries of those
-- columns read every kind of trial alike. `epoch_metrics` gives every metric of every epoch as
-- one row, columns and JSON together, for queries by name.
--
-- SQLite cannot drop a NOT NULL constraint in place: the table is rebuilt, each row keeping
-- its rowid (the order `sweep serve` polls new epochs in). No table refers to `epochs`.
ALTER TABLE epochs RENAME TO epochs_old;

CREATE TABLE epochs (
    trial_id   INTEGER NOT NULL REFERENCES trials (id),
    epoch      INTEGER NOT NULL,         -- from 1
    train_loss REAL,
    train_acc  REAL,
    val_loss   REAL,
    val_acc    REAL,
    val_f1     REAL,
    lr         REAL,
    seconds    REAL NOT NULL,
    metrics    TEXT CHECK (metrics IS NULL OR json_type(metrics) = 'object'),
    PRIMARY KEY (trial_id, epoch)
);
INSERT INTO epochs (rowid, trial_id, epoch, train_loss, train_acc, val_loss, val_acc, val_f1, lr,
                    seconds)
SELECT rowid, trial_id, epoch, train_loss, train_acc, val_loss, val_acc, val_f1, lr, seconds
FROM epochs_old ORDER BY rowid;
DROP TABLE epochs_old;

CREATE VIEW epoch_metrics (trial_id, epoch, name, value) AS
    SELECT trial_id, epoch, 'train_loss', train_loss FROM epochs WHERE train_loss IS NOT NULL
    UNION ALL
    SELECT trial_id, epoch, 'train_acc', train_acc FROM epochs WHERE train_acc IS NOT NULL
    UNION ALL
    SELECT trial_id, epoch, 'val_loss', val_loss FROM epochs WHERE val_loss IS NOT NULL
    UNION ALL
    SELECT trial_id, epoch, 'val_acc', val_acc FROM epochs WHERE val_acc IS NOT NULL
    UNION ALL
    SELECT trial_id, epoch, 'val_f1', val_f1 FROM epochs WHERE val_f1 IS NOT NULL
    UNION ALL
    SELECT trial_id, epoch, 'lr', lr FROM epochs WHERE lr IS NOT NULL
    UNION ALL
    SELECT e.trial_id, e.epoch, m.key, m.value FROM epochs e, json_each(e.metrics) m
    WHERE e.metrics IS NOT NULL;
