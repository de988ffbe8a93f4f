-- Average signal strength per operator: a ratio of sums over one-minute partials.
-- params: :operators, :postal_codes (queries.Filters: newline-separated lists, '' = all;
--   '(none)' picks events without a postal code), :batch,
--   the window's rows (Window.rows_params)
-- Operator partials carry no postal code, so a postal-code filter returns no rows here;
-- kpi_signal_postal answers that case.
WITH {{filters}}
SELECT
    g.operator,
    {{ratio(g.signal_sum, g.signal_count)}} AS avg_signal_dbm,
    CAST(sum(g.signal_count) AS BIGINT) AS signal_samples
FROM {{window_rows(gold_operator_minute)}} AS g
CROSS JOIN filters AS f
WHERE {{visible(g)}}
  AND g.operator IS NOT NULL  -- events without an operator (a banner) are in no operator's KPIs
  AND {{chosen_operator(g)}}
  AND f.postal_codes = ''
GROUP BY g.operator
HAVING sum(g.signal_count) > 0
ORDER BY g.operator
