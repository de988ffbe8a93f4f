-- Signal-drop alert: operators whose average signal (a ratio of sums) over the current
-- window fell by more than a threshold against the window just before it.
-- params: start of the current window (timestamp: earlier buckets are the previous window),
--   committed batch_id, start of the previous window, end of the current window
--   (timestamps, bucket start), the same two as dates,
--   minimum signal readings in each window, drop threshold (dB, exclusive)
SELECT
    operator,
    previous_dbm,
    current_dbm,
    previous_dbm - current_dbm AS drop_db,
    previous_samples,
    current_samples
FROM (
    SELECT
        operator,
        sum(CASE WHEN is_current THEN signal_sum END)
            / NULLIF(sum(CASE WHEN is_current THEN signal_count END), 0) AS current_dbm,
        CAST(coalesce(sum(CASE WHEN is_current THEN signal_count END), 0) AS BIGINT)
            AS current_samples,
        sum(CASE WHEN NOT is_current THEN signal_sum END)
            / NULLIF(sum(CASE WHEN NOT is_current THEN signal_count END), 0) AS previous_dbm,
        CAST(coalesce(sum(CASE WHEN NOT is_current THEN signal_count END), 0) AS BIGINT)
            AS previous_samples
    FROM (
        SELECT
            operator,
            signal_sum,
            signal_count,
            minute >= CAST(? AS TIMESTAMP) AS is_current
        FROM gold_operator_minute
        WHERE ? BETWEEN commit_id AND visible_through
          AND minute >= CAST(? AS TIMESTAMP)
          AND minute < CAST(? AS TIMESTAMP)
          AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
    ) AS g
    GROUP BY operator
) AS per_operator
WHERE current_samples >= ?
  AND previous_samples >= ?
  AND previous_dbm - current_dbm > ?
ORDER BY drop_db DESC, operator
