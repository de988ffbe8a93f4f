-- Signal-quality bands per operator: readings per band (glue_job.contract.SIGNAL_BANDS:
-- excellent >= -80 dBm, good >= -90, fair >= -100, poor below), summed from gold's counts.
-- params: :operators, :postal_codes (queries.Filters: newline-separated lists, '' = all;
--   '(none)' picks events without a postal code), :batch,
--   the window's rows (Window.rows_params)
-- Gold keeps band counts per operator only, so a postal-code filter returns no rows.
WITH {{filters}}
SELECT
    g.operator,
    CAST(sum(g.signal_excellent) AS BIGINT) AS excellent,
    CAST(sum(g.signal_good) AS BIGINT) AS good,
    CAST(sum(g.signal_fair) AS BIGINT) AS fair,
    CAST(sum(g.signal_poor) AS BIGINT) AS poor,
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
