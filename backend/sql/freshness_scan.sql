-- How fresh the committed data is: when the newest batch that read records committed,
-- and the newest event and arrival times committed so far, from every _ops row. What
-- freshness.sql reads from one row, for when that row cannot answer (see there).
-- params: :batch
SELECT
    max(batch_end) AS last_commit,
    max(max_event_time) AS newest_event,
    max(max_arrival_time) AS newest_arrival,
    CAST(count(*) AS BIGINT) AS batches
FROM ops
WHERE {{visible}}
  AND records_read > 0
