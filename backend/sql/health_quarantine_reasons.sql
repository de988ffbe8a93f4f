-- Quarantined records per reason code and time bucket of their ingest (batch start).
-- A record fails for every reason it carries, so it counts once under each.
-- params: bucket unit ('minute' | 'hour' | 'day'),
--   committed batch_id, since, until (timestamps, ingest time), since, until (dates)
SELECT
    date_trunc(?, q.ingest_time) AS bucket,
    r.reason,
    CAST(count(*) AS BIGINT) AS records
FROM quarantine AS q
CROSS JOIN UNNEST(q.reasons) AS r (reason)
WHERE ? BETWEEN q.commit_id AND q.visible_through
  AND q.ingest_time >= CAST(? AS TIMESTAMP)
  AND q.ingest_time < CAST(? AS TIMESTAMP)
  AND q.ingest_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
GROUP BY 1, 2
ORDER BY 1, 2
