-- Committed batches that started in a window, per time bucket of their start: counts,
-- the records and seconds behind the input rate (a batch's records arrived over the time
-- since the previous batch of the same clock hour started; an hour's first batch in the
-- window has no such time), and average and worst duration and source lag. Whole hours
-- and days come from _ops's rollups, as far as the bucket allows.
-- params: :batch, :unit ('minute' | 'hour' | 'day'), the window's parts
--   (Window.rows_params of the snapshot's ops marks, capped by :unit)
SELECT
    date_trunc(:unit, time) AS time,
    min(batch_id_min) AS first_batch_id,
    max(batch_id_max) AS last_batch_id,
    CAST(sum(batches) AS BIGINT) AS batches,
    CAST(sum(records) AS BIGINT) AS records,
    CAST(sum(duplicates) AS BIGINT) AS duplicates,
    CAST(sum(quarantine_rows) AS BIGINT) AS quarantine_rows,
    CAST(sum(mismatched_batches) AS BIGINT) AS mismatched_batches,
    CAST(sum(timed_records) AS BIGINT) AS timed_records,
    sum(timed_seconds) AS timed_seconds,
    {{ratio(busy_seconds, batches)}} AS duration_seconds,
    max(duration_seconds_max) AS max_duration_seconds,
    {{ratio(source_lag_sum, source_lag_count)}} AS source_lag_seconds,
    max(source_lag_seconds_max) AS max_source_lag_seconds
FROM {{ops_rows}}
GROUP BY 1
ORDER BY 1
