-- What the KPI filters can offer: events per operator and postal code in a window.
-- params: committed batch_id, since, until (timestamps, bucket start), since, until (dates)
SELECT
    operator,
    postal_code,
    CAST(sum(events) AS BIGINT) AS events
FROM gold_postal_status_minute
WHERE ? BETWEEN commit_id AND visible_through
  AND minute >= CAST(? AS TIMESTAMP)
  AND minute < CAST(? AS TIMESTAMP)
  AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
GROUP BY operator, postal_code
ORDER BY operator, postal_code NULLS FIRST
