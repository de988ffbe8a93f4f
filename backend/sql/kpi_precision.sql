-- Average GPS horizontal accuracy (metres) per operator: a ratio of sums.
-- params: filters (operators, postal codes: newline-separated lists, '' = all, each in 4
--   parameters that concatenate to it: queries.Filters),
--   committed batch_id, since, until (timestamps, bucket start), since, until (dates)
-- Gold keeps GPS precision per operator only, so a postal-code filter returns no rows.
WITH filters AS (
    SELECT
        concat(CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR))
            AS operators,
        concat(CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR), CAST(? AS VARCHAR))
            AS postal_codes
)
SELECT
    g.operator,
    sum(g.precision_sum) / sum(g.precision_count) AS avg_precision_m,
    CAST(sum(g.precision_count) AS BIGINT) AS samples
FROM gold_operator_minute AS g
CROSS JOIN filters AS f
WHERE ? BETWEEN g.commit_id AND g.visible_through
  AND g.minute >= CAST(? AS TIMESTAMP)
  AND g.minute < CAST(? AS TIMESTAMP)
  AND g.event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
  AND (f.operators = '' OR contains(split(f.operators, chr(10)), g.operator))
  AND f.postal_codes = ''
GROUP BY g.operator
HAVING sum(g.precision_count) > 0
ORDER BY g.operator
