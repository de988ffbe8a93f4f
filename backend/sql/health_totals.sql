-- Pipeline totals over the batches that started in a window, one row, and the records the
-- quarantine table holds for the same batches (its ingest_time is the batch start).
-- A batch reconciles when bronze = silver + quarantine + duplicates; a NULL count does not.
-- Whole hours and days come from _ops's rollups (their quarantine_table_rows counted when
-- the hour was sealed), the rest from the commit rows and the quarantine table themselves.
-- params: :batch, the window's parts (Window.rows_params of the snapshot's ops marks)
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
    o.rolled_quarantine_rows + q.quarantine_table_rows AS quarantine_table_rows
FROM (
    SELECT
        CAST(coalesce(sum(batches), 0) AS BIGINT) AS batches,
        CAST(sum(records) AS BIGINT) AS records,
        CAST(sum(bronze_rows) AS BIGINT) AS bronze_rows,
        CAST(sum(silver_rows) AS BIGINT) AS silver_rows,
        CAST(sum(quarantine_rows) AS BIGINT) AS quarantine_rows,
        CAST(sum(duplicates) AS BIGINT) AS duplicates,
        CAST(sum(mismatched_batches) AS BIGINT) AS mismatched_batches,
        CAST(coalesce(sum(quarantine_table_rows), 0) AS BIGINT) AS rolled_quarantine_rows,
        min(batch_start_min) AS first_batch_start,
        max(batch_start_max) AS last_batch_start,
        sum(busy_seconds) AS busy_seconds,
        max(duration_seconds_max) AS max_duration_seconds,
        max(source_lag_seconds_max) AS max_source_lag_seconds
    FROM {{ops_rows}}
) AS o
CROSS JOIN (
    SELECT CAST(count(*) AS BIGINT) AS quarantine_table_rows
    FROM quarantine
    WHERE {{visible}}
      AND {{raw_part(ingest_time, ingest_date)}}
) AS q
