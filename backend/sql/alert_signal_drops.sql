-- Signal-drop alert: operators whose average signal (a ratio of sums) over the current
-- window fell by more than a threshold against the window just before it.
-- params: :current_since (start of the current window: earlier buckets are the previous
--   one), :batch, the span of both windows (:since, :until, :since_day, :until_day),
--   :min_events (signal readings in each window), :drop_db threshold (exclusive)
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
        {{ratio(CASE WHEN is_current THEN signal_sum END, CASE WHEN is_current THEN signal_count END)}}
            AS current_dbm,
        CAST(coalesce(sum(CASE WHEN is_current THEN signal_count END), 0) AS BIGINT)
            AS current_samples,
        {{ratio(CASE WHEN NOT is_current THEN signal_sum END, CASE WHEN NOT is_current THEN signal_count END)}}
            AS previous_dbm,
        CAST(coalesce(sum(CASE WHEN NOT is_current THEN signal_count END), 0) AS BIGINT)
            AS previous_samples
    FROM (
        SELECT
            operator,
            signal_sum,
            signal_count,
            minute >= CAST(:current_since AS TIMESTAMP) AS is_current
        FROM gold_operator_minute
        WHERE {{visible}}
          AND {{in_window(minute, event_date)}}
          AND operator IS NOT NULL
    ) AS g
    GROUP BY operator
) AS per_operator
WHERE current_samples >= :min_events
  AND previous_samples >= :min_events
  AND previous_dbm - current_dbm > :drop_db
ORDER BY drop_db DESC, operator
