-- What every command reads of a trial, whatever runs it, in columns of its own (the store's
-- `TrialSummary`, with `params`): the metric its objective is the best of and that metric's
-- direction, the epochs it trains in all, and the number of classes of its data where its
-- configuration says (NULL: the data's largest label + 1). A new trial gets them from its
-- sweep file; a trial recorded before gets them here, once, from its configuration as the
-- built-in trainer wrote it then. A configuration that does not say them (damaged) leaves
-- them NULL, and reading the trial says so.
ALTER TABLE trials ADD COLUMN objective_metric TEXT;
ALTER TABLE trials ADD COLUMN objective_direction TEXT
    CHECK (objective_direction IN ('maximise', 'minimise'));
ALTER TABLE trials ADD COLUMN epochs INTEGER;
ALTER TABLE trials ADD COLUMN classes INTEGER;

UPDATE trials SET
    objective_metric = CASE json_type(config, '$.train.objective')
        WHEN 'text' THEN json_extract(config, '$.train.objective')
    END,
    objective_direction = CASE json_extract(config, '$.train.objective')
        WHEN 'val_loss' THEN 'minimise'
        WHEN 'val_f1' THEN 'maximise'
        WHEN 'val_acc' THEN 'maximise'
    END,
    epochs = CASE json_type(config, '$.train.epochs')
        WHEN 'integer' THEN json_extract(config, '$.train.epochs')
    END,
    classes = CASE 'integer'
        WHEN json_type(config, '$.classes') THEN json_extract(config, '$.classes')
        WHEN json_type(config, '$.data.synthetic.classes')
            THEN json_extract(config, '$.data.synthetic.classes')
    END
WHERE json_valid(config);
