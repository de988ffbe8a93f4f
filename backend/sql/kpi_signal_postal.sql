-- Average signal strength per operator within chosen postal codes: the same ratio of sums,
-- over the postal-code partials (which keep signal sums per operator and status).
-- params: :operators, :postal_codes (queries.Filters: newline-separated lists, '' = all;
--   '(none)' picks events without a postal code), :batch,
--   the window's rows (Window.rows_params)
WITH {{filters}}
SELECT
    g.operator,
    {{ratio(g.signal_sum, g.signal_count)}} AS avg_signal_dbm,
    CAST(sum(g.signal_count) AS BIGINT) AS signal_samples
FROM {{window_rows(gold_postal_status_minute)}} AS g
CROSS JOIN filters AS f
WHERE {{visible(g)}}
  AND g.operator IS NOT NULL  -- events without an operator (a banner) are in no operator's KPIs
  AND {{chosen_operator(g)}}
  AND {{chosen_postal_code(g)}}
GROUP BY g.operator
HAVING sum(g.signal_count) > 0
ORDER BY g.operator
