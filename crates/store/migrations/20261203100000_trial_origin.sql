-- How each trial was chosen: 'grid' (a cell of the grid), 'random' (a `[random]` sample),
-- 'startup' (a `[search]` trial drawn at random before the model is used) or 'model' (a
-- `[search]` trial the model suggested). NULL for trials recorded before it existed.
ALTER TABLE trials ADD COLUMN origin TEXT
    CHECK (origin IS NULL OR origin IN ('grid', 'random', 'startup', 'model'));
