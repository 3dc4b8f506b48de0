-- Every trial gets a number within its sweep, from 1, in the order the trials were first
-- recorded: the one number a user sees for a trial in every command, plot and file. It never
-- changes (growing the grid renumbers grid_index, not number).
ALTER TABLE trials ADD COLUMN number INTEGER;

UPDATE trials SET number = (
    SELECT count(*) FROM trials AS t WHERE t.sweep_id = trials.sweep_id AND t.id <= trials.id
);

CREATE UNIQUE INDEX trials_by_number ON trials (sweep_id, number);
