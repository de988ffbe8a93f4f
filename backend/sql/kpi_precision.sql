-- Average GPS horizontal accuracy (metres) per operator: a ratio of sums.
-- params: committed batch_id, since, until (timestamps, bucket start), since, until (dates)
SELECT
    operator,
    sum(precision_sum) / sum(precision_count) AS avg_precision_m,
    CAST(sum(precision_count) AS BIGINT) AS samples
FROM gold_operator_minute
WHERE batch_id <= ?
  AND minute >= CAST(? AS TIMESTAMP)
  AND minute < CAST(? AS TIMESTAMP)
  AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
GROUP BY operator
HAVING sum(precision_count) > 0
ORDER BY operator
