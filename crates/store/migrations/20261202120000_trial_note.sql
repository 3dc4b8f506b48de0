-- What happened to a trial that a user should know and that its status does not say: how it
-- last got past damaged checkpoints (resumed from an older one, or started again from epoch
-- 1, and why), as `sweep show` prints it. NULL for a trial that never needed to.
ALTER TABLE trials ADD COLUMN note TEXT;
