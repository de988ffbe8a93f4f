-- The newest committed micro-batch's _ops row: when it ran, what it read and quarantined
-- (`telcopulse status`). Empty batches count: a job that runs but reads nothing is still up.
-- params: :batch
SELECT
    batch_id,
    batch_start,
    batch_end,
    records_read,
    silver_rows,
    quarantine_rows,
    duplicates
FROM ops
WHERE {{visible}}
ORDER BY batch_id DESC
LIMIT 1
