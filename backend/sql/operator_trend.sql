-- Per-operator time series: events, average signal and average GPS precision per bucket,
-- each a ratio of sums over the one-minute partials inside the bucket.
-- params: bucket unit ('minute' | 'hour' | 'day'),
--   committed batch_id, since, until (timestamps, bucket start), since, until (dates)
SELECT
    date_trunc(?, minute) AS bucket,
    operator,
    CAST(sum(events) AS BIGINT) AS events,
    sum(signal_sum) / NULLIF(sum(signal_count), 0) AS avg_signal_dbm,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    sum(precision_sum) / NULLIF(sum(precision_count), 0) AS avg_precision_m,
    CAST(sum(precision_count) AS BIGINT) AS precision_samples
FROM gold_operator_minute
WHERE batch_id <= ?
  AND minute >= CAST(? AS TIMESTAMP)
  AND minute < CAST(? AS TIMESTAMP)
  AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
GROUP BY 1, 2
ORDER BY 1, 2
