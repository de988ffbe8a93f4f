-- One postal code over a window, per time bucket and status: events and signal sums.
-- params: bucket unit ('minute' | 'hour' | 'day') and step in minutes within the hour (1, or
--   5 for five-minute buckets), committed batch_id,
--   since, until (timestamps, bucket start), since, until (dates), then the postal code
SELECT
    bucket,
    status,
    status_label,
    CAST(sum(events) AS BIGINT) AS events,
    sum(signal_sum) AS signal_sum,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples
FROM (
    SELECT
        date_trunc(?, minute) - INTERVAL '1' MINUTE * (extract(MINUTE FROM minute) % ?)
            AS bucket,
        status,
        status_label,
        events,
        signal_sum,
        signal_count
    FROM gold_postal_status_minute
    WHERE ? BETWEEN commit_id AND visible_through
      AND minute >= CAST(? AS TIMESTAMP)
      AND minute < CAST(? AS TIMESTAMP)
      AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
      AND postal_code = ?
) AS bucketed
GROUP BY bucket, status, status_label
ORDER BY bucket, status
