-- Events per postal code over a window, placed at the centroid of the positions they
-- carried: Σ latitude_sum / Σ position_count (NULL when none carried one). Events without
-- a postal code form one row with postal_code NULL, so the page can say what it leaves out.
-- The first and last minute of each code's events pick its trend's bucket.
-- params: :out_of_service (the status code), :batch, the window's rows
--   (Window.rows_params)
SELECT
    postal_code,
    CAST(sum(events) AS BIGINT) AS events,
    CAST(sum(CASE WHEN status = :out_of_service THEN events ELSE 0 END) AS BIGINT) AS out_of_service_events,
    {{ratio(signal_sum, signal_count)}} AS avg_signal_dbm,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    CAST(sum(position_count) AS BIGINT) AS positions,
    {{ratio(latitude_sum, position_count)}} AS latitude,
    {{ratio(longitude_sum, position_count)}} AS longitude,
    min(minute_min) AS first_minute,
    max(minute_max) AS last_minute
FROM {{window_rows(gold_postal_status_minute)}} AS w
WHERE {{visible}}
GROUP BY postal_code
ORDER BY postal_code NULLS FIRST
