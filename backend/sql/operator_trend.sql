-- Per-operator time series: events, average signal and average GPS precision per bucket,
-- each a ratio of sums over the one-minute partials inside the bucket.
-- params: :operators, :postal_codes (queries.Filters: newline-separated lists, '' = all;
--   '(none)' picks events without a postal code), :unit ('minute' | 'hour' | 'day'),
--   :step (minutes within the hour: 1, or 5), :batch, the window's rows (Window.rows_params)
-- Operator partials carry no postal code, so a postal-code filter returns no rows here;
-- operator_trend_postal answers that case.
WITH {{filters}}
SELECT
    bucket,
    operator,
    CAST(sum(events) AS BIGINT) AS events,
    {{ratio(signal_sum, signal_count)}} AS avg_signal_dbm,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    {{ratio(precision_sum, precision_count)}} AS avg_precision_m,
    CAST(sum(precision_count) AS BIGINT) AS precision_samples
FROM (
    SELECT
        {{bucket(g.minute)}} AS bucket,
        g.operator,
        g.events,
        g.signal_sum,
        g.signal_count,
        g.precision_sum,
        g.precision_count
    FROM {{window_rows(gold_operator_minute)}} AS g
    CROSS JOIN filters AS f
    WHERE {{visible(g)}}
      AND g.operator IS NOT NULL  -- events without an operator (a banner) are in no operator's KPIs
      AND {{chosen_operator(g)}}
      AND f.postal_codes = ''
) AS bucketed
GROUP BY bucket, operator
ORDER BY bucket, operator
