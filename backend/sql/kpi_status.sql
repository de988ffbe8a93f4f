-- Network-status counts per postal code; events without a postal code form one group.
-- params: filters (operators, postal codes: newline-separated lists, '' = all, each in 4
--   parameters that concatenate to it: queries.Filters; the code
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
    g.postal_code,
    g.status_label,
    CAST(sum(g.events) AS BIGINT) AS events
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
GROUP BY g.postal_code, g.status, g.status_label
ORDER BY g.postal_code NULLS FIRST, g.status
