-- Pipeline totals over the batches that started in a window, one row, and the records the
-- quarantine table holds for the same batches (its ingest_time is the batch start).
-- A batch reconciles when bronze = silver + quarantine + duplicates; a NULL count does not.
-- params: :batch, the window (:since, :until; :since_day, :until_day for the dates of
--   _ops (batch_date) and quarantine (ingest_date))
SELECT
    o.batches,
    o.records,
    o.bronze_rows,
    o.silver_rows,
    o.quarantine_rows,
    o.duplicates,
    o.mismatched_batches,
    o.first_batch_start,
    o.last_batch_start,
    o.busy_seconds,
    o.max_duration_seconds,
    o.max_source_lag_seconds,
    q.quarantine_table_rows
FROM (
    SELECT
        CAST(count(*) AS BIGINT) AS batches,
        CAST(sum(records_read) AS BIGINT) AS records,
        CAST(sum(bronze_rows) AS BIGINT) AS bronze_rows,
        CAST(sum(silver_rows) AS BIGINT) AS silver_rows,
        CAST(sum(quarantine_rows) AS BIGINT) AS quarantine_rows,
        CAST(sum(duplicates) AS BIGINT) AS duplicates,
        CAST(sum(
            CASE WHEN bronze_rows = silver_rows + quarantine_rows + duplicates THEN 0 ELSE 1 END
        ) AS BIGINT) AS mismatched_batches,
        min(batch_start) AS first_batch_start,
        max(batch_start) AS last_batch_start,
        sum(duration_seconds) AS busy_seconds,
        max(duration_seconds) AS max_duration_seconds,
        max(source_lag_seconds) AS max_source_lag_seconds
    FROM ops
    WHERE {{visible}}
      AND {{in_window(batch_start, batch_date)}}
) AS o
CROSS JOIN (
    SELECT CAST(count(*) AS BIGINT) AS quarantine_table_rows
    FROM quarantine
    WHERE {{visible}}
      AND {{in_window(ingest_time, ingest_date)}}
) AS q
