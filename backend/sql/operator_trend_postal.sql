-- Per-operator time series within chosen postal codes: events and average signal per
-- bucket from the postal-code partials. They keep no GPS precision, so that is NULL.
-- params: :operators, :postal_codes (queries.Filters: newline-separated lists, '' = all;
--   '(none)' picks events without a postal code), :unit ('minute' | 'hour' | 'day'),
--   :step (minutes within the hour: 1, or 5), :batch, the window's rows (Window.rows_params)
WITH {{filters}}
SELECT
    bucket,
    operator,
    CAST(sum(events) AS BIGINT) AS events,
    {{ratio(signal_sum, signal_count)}} AS avg_signal_dbm,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    CAST(NULL AS DOUBLE) AS avg_precision_m,
    CAST(0 AS BIGINT) AS precision_samples
FROM (
    SELECT
        {{bucket(g.minute)}} AS bucket,
        g.operator,
        g.events,
        g.signal_sum,
        g.signal_count
    FROM {{window_rows(gold_postal_status_minute)}} AS g
    CROSS JOIN filters AS f
    WHERE {{visible(g)}}
      AND g.operator IS NOT NULL  -- events without an operator (a banner) are in no operator's KPIs
      AND {{chosen_operator(g)}}
      AND {{chosen_postal_code(g)}}
) AS bucketed
GROUP BY bucket, operator
ORDER BY bucket, operator
