-- One postal code over a window, per time bucket and status: events and signal sums.
-- params: :unit ('minute' | 'hour' | 'day') and :step (minutes within the hour: 1, or 5),
--   :batch, the window's rows (Window.rows_params), :postal_code
SELECT
    bucket,
    status,
    status_label,
    CAST(sum(events) AS BIGINT) AS events,
    sum(signal_sum) AS signal_sum,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples
FROM (
    SELECT
        {{bucket(minute)}} AS bucket,
        status,
        status_label,
        events,
        signal_sum,
        signal_count
    FROM {{window_rows(gold_postal_status_minute)}} AS w
    WHERE {{visible}}
      AND postal_code = :postal_code
) AS bucketed
GROUP BY bucket, status, status_label
ORDER BY bucket, status
