-- Headline KPIs for a window and the window just before it: one row per period
-- ('current', 'previous'), each a ratio of sums over one-minute partials.
-- params: :current_since (start of the current window: earlier buckets are 'previous'),
--   :batch, and the span of both windows (:since, :until, :since_day, :until_day).
-- Without a previous window, :since is :current_since: only 'current' comes back.
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
        min(minute) AS first_minute,
        max(minute) AS last_minute
    FROM (
        SELECT
            CASE WHEN minute >= CAST(:current_since AS TIMESTAMP) THEN 'current' ELSE 'previous' END
                AS period,
            minute,
            operator,
            events,
            signal_sum,
            signal_count,
            precision_sum,
            precision_count
        FROM gold_operator_minute
        WHERE {{visible}}
          AND {{in_window(minute, event_date)}}
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
        SELECT
            CASE WHEN minute >= CAST(:current_since AS TIMESTAMP) THEN 'current' ELSE 'previous' END
                AS period,
            postal_code,
            status,
            events
        FROM gold_postal_status_minute
        WHERE {{visible}}
          AND {{in_window(minute, event_date)}}
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
