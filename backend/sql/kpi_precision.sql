-- Average GPS horizontal accuracy (metres) per operator: a ratio of sums.
-- params: :operators, :postal_codes (queries.Filters: newline-separated lists, '' = all;
--   '(none)' picks events without a postal code), :batch,
--   the window's rows (Window.rows_params)
-- Gold keeps GPS precision per operator only, so a postal-code filter returns no rows.
WITH {{filters}}
SELECT
    g.operator,
    {{ratio(g.precision_sum, g.precision_count)}} AS avg_precision_m,
    CAST(sum(g.precision_count) AS BIGINT) AS precision_samples
FROM {{window_rows(gold_operator_minute)}} AS g
CROSS JOIN filters AS f
WHERE {{visible(g)}}
  AND g.operator IS NOT NULL  -- events without an operator (a banner) are in no operator's KPIs
  AND {{chosen_operator(g)}}
  AND f.postal_codes = ''
GROUP BY g.operator
HAVING sum(g.precision_count) > 0
ORDER BY g.operator
