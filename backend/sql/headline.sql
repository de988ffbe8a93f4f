-- Headline KPIs over a window, one row: ratios of sums over one-minute partials.
-- params, twice (first for gold_operator_minute, then for gold_postal_status_minute):
--   committed batch_id, since, until (timestamps, bucket start), since, until (dates)
-- Status 0 is IN_SERVICE (glue_job.contract.STATUS_LABELS).
SELECT
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
FROM (
    SELECT
        CAST(sum(events) AS BIGINT) AS events,
        sum(signal_sum) / NULLIF(sum(signal_count), 0) AS avg_signal_dbm,
        CAST(sum(signal_count) AS BIGINT) AS signal_samples,
        sum(precision_sum) / NULLIF(sum(precision_count), 0) AS avg_precision_m,
        CAST(sum(precision_count) AS BIGINT) AS precision_samples,
        CAST(count(DISTINCT operator) AS BIGINT) AS operators,
        min(minute) AS first_minute,
        max(minute) AS last_minute
    FROM gold_operator_minute
    WHERE batch_id <= ?
      AND minute >= CAST(? AS TIMESTAMP)
      AND minute < CAST(? AS TIMESTAMP)
      AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
) AS o
CROSS JOIN (
    SELECT
        CAST(sum(CASE WHEN status = 0 THEN events ELSE 0 END) AS BIGINT) AS in_service_events,
        CAST(sum(events) AS BIGINT) AS status_events,
        CAST(count(DISTINCT postal_code) AS BIGINT) AS postal_codes
    FROM gold_postal_status_minute
    WHERE batch_id <= ?
      AND minute >= CAST(? AS TIMESTAMP)
      AND minute < CAST(? AS TIMESTAMP)
      AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
) AS p
