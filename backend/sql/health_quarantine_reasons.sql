-- Quarantined records per reason code and time bucket of their ingest (batch start).
-- A record fails for every reason it carries, so it counts once under each. Whole hours
-- and days come from quarantine's reason rollups (sealed with _ops's), as far as the
-- bucket allows; the rest from the quarantine table itself.
-- params: :unit ('minute' | 'hour' | 'day'), :batch, the window's parts
--   (Window.rows_params of the snapshot's ops marks, capped by :unit)
SELECT
    date_trunc(:unit, time) AS bucket,
    reason,
    CAST(sum(records) AS BIGINT) AS records
FROM (
    SELECT q.ingest_time AS time, r.reason, 1 AS records
    FROM quarantine AS q
    CROSS JOIN UNNEST(q.reasons) AS r (reason)
    WHERE {{visible(q)}}
      AND {{raw_part(q.ingest_time, q.ingest_date)}}
    UNION ALL
    SELECT hour AS time, reason, records
    FROM quarantine_hour
    WHERE {{visible}}
      AND {{hour_part(hour, ingest_date)}}
    UNION ALL
    SELECT day AS time, reason, records
    FROM quarantine_day
    WHERE {{visible}}
      AND {{day_part(day, ingest_month)}}
) AS counted
GROUP BY 1, 2
ORDER BY 1, 2
