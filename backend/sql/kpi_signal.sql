-- Average signal strength per operator: a ratio of sums over one-minute partials.
-- params: committed batch_id, since, until (timestamps, bucket start), since, until (dates)
SELECT
    operator,
    sum(signal_sum) / sum(signal_count) AS avg_signal_dbm,
    CAST(sum(signal_count) AS BIGINT) AS samples
FROM gold_operator_minute
WHERE batch_id <= ?
  AND minute >= CAST(? AS TIMESTAMP)
  AND minute < CAST(? AS TIMESTAMP)
  AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
GROUP BY operator
HAVING sum(signal_count) > 0
ORDER BY operator
