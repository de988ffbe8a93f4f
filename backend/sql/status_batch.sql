-- The newest committed micro-batch's _ops row: when it ran, what it read and quarantined
-- (`telcopulse status`). Empty batches count: a job that runs but reads nothing is still up.
-- params: committed batch_id
SELECT
    batch_id,
    batch_start,
    batch_end,
    records_read,
    silver_rows,
    quarantine_rows,
    duplicates
FROM ops
WHERE ? BETWEEN commit_id AND visible_through
ORDER BY batch_id DESC
LIMIT 1
