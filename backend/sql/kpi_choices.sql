-- What the KPI filters can offer: events per operator and postal code in a window.
-- params: :batch, the window's rows (Window.rows_params)
SELECT
    operator,
    postal_code,
    CAST(sum(events) AS BIGINT) AS events
FROM {{window_rows(gold_postal_status_minute)}} AS w
WHERE {{visible}}
GROUP BY operator, postal_code
ORDER BY operator, postal_code NULLS FIRST
