-- One coverage cell over a window, per time bucket: events per status and signal sums.
-- params: :unit ('minute' | 'hour' | 'day') and :step (minutes within the hour: 1, or 5),
--   :batch, the window's rows (Window.rows_params), :cell
SELECT
    bucket,
    CAST(sum(events) AS BIGINT) AS events,
    CAST(sum(status_in_service) AS BIGINT) AS status_in_service,
    CAST(sum(status_out_of_service) AS BIGINT) AS status_out_of_service,
    CAST(sum(status_emergency_only) AS BIGINT) AS status_emergency_only,
    CAST(sum(status_power_off) AS BIGINT) AS status_power_off,
    sum(signal_sum) AS signal_sum,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples
FROM (
    SELECT {{bucket(minute)}} AS bucket, w.*
    FROM {{window_rows(gold_cell_minute)}} AS w
    WHERE {{visible}}
      AND cell = :cell
) AS bucketed
GROUP BY bucket
ORDER BY bucket
