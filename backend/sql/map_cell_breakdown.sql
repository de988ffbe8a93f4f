-- One coverage cell over a window, per operator: events per status (the status_* columns,
-- glue_job.tables.STATUS_COLUMNS) and signal sums, from which the page builds the same
-- status breakdown and per-operator table as for a postal code (ratios of sums).
-- params: :batch, the window's rows (Window.rows_params), :cell (an H3 index; it names its
--   own resolution)
SELECT
    coalesce(operator, '(no operator)') AS operator,  -- a banner's events: no operator
    CAST(sum(events) AS BIGINT) AS events,
    CAST(sum(status_in_service) AS BIGINT) AS status_in_service,
    CAST(sum(status_out_of_service) AS BIGINT) AS status_out_of_service,
    CAST(sum(status_emergency_only) AS BIGINT) AS status_emergency_only,
    CAST(sum(status_power_off) AS BIGINT) AS status_power_off,
    sum(signal_sum) AS signal_sum,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    min(minute_min) AS first_minute,
    max(minute_max) AS last_minute
FROM {{window_rows(gold_cell_minute)}} AS w
WHERE {{visible}}
  AND cell = :cell
GROUP BY 1
ORDER BY operator
