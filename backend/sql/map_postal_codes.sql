-- Events per postal code over a window, placed at the centroid of the positions they
-- carried: Σ latitude_sum / Σ position_count (NULL when none carried one). Events without
-- a postal code form one row with postal_code NULL, so the page can say what it leaves out.
-- Each code's events lie within its periods_from..periods_until: its first period's start
-- to its last period's end (a minute, an hour or a day), enough for the page to guess the
-- trend's bucket (map_data.likely_bucket) before the breakdown gives the exact span. The
-- exact span (minute_min, minute_max) would add more than half again to what this reads
-- over a year of day rollups (bench/results.md, 2026-12-07).
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
    min(minute) AS periods_from,
    max(period_end) AS periods_until
FROM {{window_rows(gold_postal_status_minute)}} AS w
WHERE {{visible}}
GROUP BY postal_code
ORDER BY postal_code NULLS FIRST
