-- Per-operator time series within chosen postal codes: events and average signal per
-- bucket from the postal-code partials. They keep no GPS precision, so that is NULL.
-- params: filters (operators, postal codes: newline-separated lists, '' = all; the code
--   '(none)' selects events without a postal code), bucket unit ('minute' | 'hour' | 'day')
--   and step in minutes within the hour (1, or 5), committed batch_id,
--   since, until (timestamps, bucket start), since, until (dates)
WITH filters AS (
    SELECT
        concat(CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR))
            AS operators,
        concat(CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR))
            AS postal_codes
)
SELECT
    bucket,
    operator,
    CAST(sum(events) AS BIGINT) AS events,
    sum(signal_sum) / NULLIF(sum(signal_count), 0) AS avg_signal_dbm,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    CAST(NULL AS DOUBLE) AS avg_precision_m,
    CAST(0 AS BIGINT) AS precision_samples
FROM (
    SELECT
        date_trunc(?, g.minute)
            - INTERVAL '1' MINUTE * (extract(MINUTE FROM g.minute) % ?) AS bucket,
        g.operator,
        g.events,
        g.signal_sum,
        g.signal_count
    FROM gold_postal_status_minute AS g
    CROSS JOIN filters AS f
    WHERE ? BETWEEN g.commit_id AND g.visible_through
      AND g.minute >= CAST(? AS TIMESTAMP)
      AND g.minute < CAST(? AS TIMESTAMP)
      AND g.event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
      AND (f.operators = '' OR contains(split(f.operators, chr(10)), g.operator))
      AND (
          f.postal_codes = ''
          OR contains(split(f.postal_codes, chr(10)), coalesce(g.postal_code, '(none)'))
      )
) AS bucketed
GROUP BY bucket, operator
ORDER BY bucket, operator
