-- Quarantined records per reason code and time bucket of their ingest (batch start).
-- A record fails for every reason it carries, so it counts once under each.
-- params: :unit ('minute' | 'hour' | 'day'), :batch, the window of ingest times
--   (:since, :until, :since_day, :until_day)
SELECT
    date_trunc(:unit, q.ingest_time) AS bucket,
    r.reason,
    CAST(count(*) AS BIGINT) AS records
FROM quarantine AS q
CROSS JOIN UNNEST(q.reasons) AS r (reason)
WHERE {{visible(q)}}
  AND {{in_window(q.ingest_time, q.ingest_date)}}
GROUP BY 1, 2
ORDER BY 1, 2
