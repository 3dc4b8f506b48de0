-- Slurm: a trial submitted as a Slurm job keeps its job id (`123_4`, as squeue and scancel
-- write it) while it runs and after; `events_offset` is where in its folder's events.jsonl the
-- current attempt's events begin, so a runner that re-attaches reads exactly them.
-- A sweep run by the Slurm executor is followed by one runner at a time: `attached_by` names
-- it and `attached_at` (unix seconds) is its heartbeat, so a second `sweep run` is refused
-- while the first is alive.
ALTER TABLE trials ADD COLUMN slurm_job TEXT;
ALTER TABLE trials ADD COLUMN events_offset INTEGER;
ALTER TABLE sweeps ADD COLUMN attached_by TEXT;
ALTER TABLE sweeps ADD COLUMN attached_at REAL;
