-- Headline KPIs for a window and the window just before it: one row per period
-- ('current', 'previous'), each a ratio of sums over the gold rows of its window.
-- params: :batch, the current window's rows (Window.rows_params) and the previous
--   window's, prefixed previous_ (an empty window when there is none: then only
--   'current' comes back).
-- Status 0 is IN_SERVICE (glue_job.contract.STATUS_LABELS).
WITH o AS (
    SELECT
        period,
        CAST(sum(events) AS BIGINT) AS events,
        {{ratio(signal_sum, signal_count)}} AS avg_signal_dbm,
        CAST(sum(signal_count) AS BIGINT) AS signal_samples,
        {{ratio(precision_sum, precision_count)}} AS avg_precision_m,
        CAST(sum(precision_count) AS BIGINT) AS precision_samples,
        CAST(count(DISTINCT operator) AS BIGINT) AS operators,
        min(minute_min) AS first_minute,
        max(minute_max) AS last_minute
    FROM (
        SELECT 'current' AS period, g.*
        FROM {{window_rows(gold_operator_minute)}} AS g
        WHERE {{visible(g)}}
        UNION ALL
        SELECT 'previous' AS period, g.*
        FROM {{window_rows(gold_operator_minute, previous_)}} AS g
        WHERE {{visible(g)}}
    ) AS g
    GROUP BY period
),
p AS (
    SELECT
        period,
        CAST(sum(CASE WHEN status = 0 THEN events ELSE 0 END) AS BIGINT) AS in_service_events,
        CAST(sum(events) AS BIGINT) AS status_events,
        CAST(count(DISTINCT postal_code) AS BIGINT) AS postal_codes
    FROM (
        SELECT 'current' AS period, s.*
        FROM {{window_rows(gold_postal_status_minute)}} AS s
        WHERE {{visible(s)}}
        UNION ALL
        SELECT 'previous' AS period, s.*
        FROM {{window_rows(gold_postal_status_minute, previous_)}} AS s
        WHERE {{visible(s)}}
    ) AS s
    GROUP BY period
)
SELECT
    coalesce(o.period, p.period) AS period,
    o.events,
    o.avg_signal_dbm,
    o.signal_samples,
    o.avg_precision_m,
    o.precision_samples,
    o.operators,
    o.first_minute,
    o.last_minute,
    p.in_service_events,
    p.status_events,
    CAST(p.in_service_events AS DOUBLE) / NULLIF(p.status_events, 0) AS in_service_share,
    p.postal_codes
FROM o
FULL OUTER JOIN p ON o.period = p.period
ORDER BY 1
