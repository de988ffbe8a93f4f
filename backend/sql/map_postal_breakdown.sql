-- One postal code over a window, per operator and status: events and signal sums, from
-- which the page rolls up the status breakdown and the per-operator table (ratios of sums).
-- params: :batch, the window's rows (Window.rows_params), :postal_code
SELECT
    coalesce(operator, '(no operator)') AS operator,  -- a banner's events: no operator
    status,
    status_label,
    CAST(sum(events) AS BIGINT) AS events,
    sum(signal_sum) AS signal_sum,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    min(minute_min) AS first_minute,
    max(minute_max) AS last_minute
FROM {{window_rows(gold_postal_status_minute)}} AS w
WHERE {{visible}}
  AND postal_code = :postal_code
GROUP BY 1, status, status_label
ORDER BY operator, status
