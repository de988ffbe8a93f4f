-- One row per committed batch that started in a window, oldest first, with the seconds
-- since the previous batch in the window started (what the records arrived over).
-- params: :batch, the window (:since, :until of batch start; :since_day, :until_day of its
--   batch_date partition)
SELECT
    batch_id,
    batch_start,
    batch_end,
    records_read,
    bronze_rows,
    silver_rows,
    quarantine_rows,
    duplicates,
    duration_seconds,
    source_lag_seconds,
    date_diff('millisecond', lag(batch_start) OVER (ORDER BY batch_id), batch_start) / 1000.0
        AS interval_seconds
FROM ops
WHERE {{visible}}
  AND {{in_window(batch_start, batch_date)}}
ORDER BY batch_id
