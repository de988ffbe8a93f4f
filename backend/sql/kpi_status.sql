-- Network-status counts per postal code; events without a postal code form one group.
-- params: committed batch_id, since, until (timestamps, bucket start), since, until (dates)
SELECT
    postal_code,
    status_label,
    CAST(sum(events) AS BIGINT) AS events
FROM gold_postal_status_minute
WHERE batch_id <= ?
  AND minute >= CAST(? AS TIMESTAMP)
  AND minute < CAST(? AS TIMESTAMP)
  AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
GROUP BY postal_code, status, status_label
ORDER BY postal_code NULLS FIRST, status
