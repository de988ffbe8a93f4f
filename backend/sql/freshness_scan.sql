-- How fresh the committed data is: when the newest batch that read records committed,
-- and the newest event and arrival times committed so far; and when the newest batch that
-- wrote silver committed, and its newest arrival. From every _ops row: what freshness.sql
-- reads from one row, for when that row cannot answer (see there).
-- params: :batch
SELECT
    max(batch_end) AS last_commit,
    max(max_event_time) AS newest_event,
    max(max_arrival_time) AS newest_arrival,
    CAST(count(*) AS BIGINT) AS batches,
    max(CASE WHEN silver_rows > 0 THEN batch_end END) AS silver_last_commit,
    max(CASE WHEN silver_rows > 0 THEN max_arrival_time END) AS silver_newest_arrival
FROM ops
WHERE {{visible}}
  AND records_read > 0
