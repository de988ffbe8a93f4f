-- Committed batches that started in a window, per time bucket of their start: counts,
-- the records and seconds behind the input rate (a batch's records arrived over the time
-- since the previous batch started; the window's first batch has no such time), and
-- average and worst duration and source lag.
-- params: :batch, the window (:since, :until of batch start; :since_day, :until_day of its
--   batch_date partition), :unit ('minute' | 'hour' | 'day')
WITH timed AS (
    SELECT
        batch_id,
        batch_start,
        records_read,
        bronze_rows,
        silver_rows,
        quarantine_rows,
        duplicates,
        duration_seconds,
        source_lag_seconds,
        date_diff('millisecond', lag(batch_start) OVER (ORDER BY batch_id), batch_start)
            AS interval_ms
    FROM ops
    WHERE {{visible}}
      AND {{in_window(batch_start, batch_date)}}
)
SELECT
    date_trunc(:unit, batch_start) AS time,
    min(batch_id) AS first_batch_id,
    max(batch_id) AS last_batch_id,
    CAST(count(*) AS BIGINT) AS batches,
    CAST(sum(records_read) AS BIGINT) AS records,
    CAST(sum(duplicates) AS BIGINT) AS duplicates,
    CAST(sum(quarantine_rows) AS BIGINT) AS quarantine_rows,
    CAST(sum(
        CASE WHEN bronze_rows = silver_rows + quarantine_rows + duplicates THEN 0 ELSE 1 END
    ) AS BIGINT) AS mismatched_batches,
    CAST(sum(CASE WHEN interval_ms IS NOT NULL THEN records_read ELSE 0 END) AS BIGINT)
        AS timed_records,
    sum(interval_ms) / 1000.0 AS timed_seconds,
    avg(duration_seconds) AS duration_seconds,
    max(duration_seconds) AS max_duration_seconds,
    avg(source_lag_seconds) AS source_lag_seconds,
    max(source_lag_seconds) AS max_source_lag_seconds
FROM timed
GROUP BY 1
ORDER BY 1
