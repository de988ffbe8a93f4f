-- One postal code over a window, per operator and status: events and signal sums, from
-- which the page rolls up the status breakdown and the per-operator table (ratios of sums).
-- params: committed batch_id, since, until (timestamps, bucket start), since, until (dates),
--   then the postal code
SELECT
    operator,
    status,
    status_label,
    CAST(sum(events) AS BIGINT) AS events,
    sum(signal_sum) AS signal_sum,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    min(minute) AS first_minute,
    max(minute) AS last_minute
FROM gold_postal_status_minute
WHERE ? BETWEEN commit_id AND visible_through
  AND minute >= CAST(? AS TIMESTAMP)
  AND minute < CAST(? AS TIMESTAMP)
  AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
  AND postal_code = ?
GROUP BY operator, status, status_label
ORDER BY operator, status
