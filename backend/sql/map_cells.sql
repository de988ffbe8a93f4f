-- Coverage cells at one H3 resolution over a window: events, Σ signal / Σ readings and
-- out-of-service events per cell, from gold_cell_minute (glue_job.tables.CELL_MINUTE).
-- Only events that carried a position have a cell.
-- params: :resolution (glue_job.contract.H3_RESOLUTIONS), :batch, the window's rows
--   (Window.rows_params)
SELECT
    cell,
    CAST(sum(events) AS BIGINT) AS events,
    CAST(sum(status_out_of_service) AS BIGINT) AS out_of_service_events,
    {{ratio(signal_sum, signal_count)}} AS avg_signal_dbm,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples
FROM {{window_rows(gold_cell_minute)}} AS w
WHERE {{visible}}
  AND resolution = :resolution
GROUP BY cell
ORDER BY cell
