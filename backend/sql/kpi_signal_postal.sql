-- Average signal strength per operator within chosen postal codes: the same ratio of sums,
-- over the postal-code partials (which keep signal sums per operator and status).
-- params: filters (operators, postal codes: newline-separated lists, '' = all; the code
--   '(none)' selects events without a postal code), committed batch_id,
--   since, until (timestamps, bucket start), since, until (dates)
WITH filters AS (
    SELECT
        concat(CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR))
            AS operators,
        concat(CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR))
            AS postal_codes
)
SELECT
    g.operator,
    sum(g.signal_sum) / sum(g.signal_count) AS avg_signal_dbm,
    CAST(sum(g.signal_count) AS BIGINT) AS samples
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
GROUP BY g.operator
HAVING sum(g.signal_count) > 0
ORDER BY g.operator
