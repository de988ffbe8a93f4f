-- One postal code over a window, per operator and status: events and signal sums, from
-- which the page rolls up the status breakdown and the per-operator table (ratios of sums).
-- params: :batch, the window (:since, :until, :since_day, :until_day), :postal_code
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
WHERE {{visible}}
  AND {{in_window(minute, event_date)}}
  AND postal_code = :postal_code
GROUP BY operator, status, status_label
ORDER BY operator, status
