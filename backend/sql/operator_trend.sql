-- Per-operator time series: events, average signal and average GPS precision per bucket,
-- each a ratio of sums over the one-minute partials inside the bucket.
-- params: filters (operators, postal codes: newline-separated lists, '' = all, each in 4
--   parameters that concatenate to it: queries.Filters),
--   bucket unit ('minute' | 'hour' | 'day') and step in minutes within the hour (1, or 5
--   for five-minute buckets), committed batch_id,
--   since, until (timestamps, bucket start), since, until (dates)
-- Operator partials carry no postal code, so a postal-code filter returns no rows here;
-- operator_trend_postal answers that case.
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
    sum(precision_sum) / NULLIF(sum(precision_count), 0) AS avg_precision_m,
    CAST(sum(precision_count) AS BIGINT) AS precision_samples
FROM (
    SELECT
        date_trunc(?, g.minute)
            - INTERVAL '1' MINUTE * (extract(MINUTE FROM g.minute) % ?) AS bucket,
        g.operator,
        g.events,
        g.signal_sum,
        g.signal_count,
        g.precision_sum,
        g.precision_count
    FROM gold_operator_minute AS g
    CROSS JOIN filters AS f
    WHERE ? BETWEEN g.commit_id AND g.visible_through
      AND g.minute >= CAST(? AS TIMESTAMP)
      AND g.minute < CAST(? AS TIMESTAMP)
      AND g.event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
      AND (f.operators = '' OR contains(split(f.operators, chr(10)), g.operator))
      AND f.postal_codes = ''
) AS bucketed
GROUP BY bucket, operator
ORDER BY bucket, operator
