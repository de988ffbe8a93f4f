-- Network-status counts per postal code; events without a postal code form one group.
-- params: :operators, :postal_codes (queries.Filters: newline-separated lists, '' = all;
--   '(none)' picks events without a postal code), :batch,
--   the window's rows (Window.rows_params)
WITH {{filters}}
SELECT
    g.postal_code,
    g.status_label,
    CAST(sum(g.events) AS BIGINT) AS events
FROM {{window_rows(gold_postal_status_minute)}} AS g
CROSS JOIN filters AS f
WHERE {{visible(g)}}
  AND {{chosen_operator(g)}}
  AND {{chosen_postal_code(g)}}
GROUP BY g.postal_code, g.status, g.status_label
ORDER BY g.postal_code NULLS FIRST, g.status
