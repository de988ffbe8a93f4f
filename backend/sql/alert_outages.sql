-- Outage alert: postal codes where OUT_OF_SERVICE (1) and EMERGENCY_ONLY (2) events make
-- up more than a share of all events in a window (glue_job.contract.STATUS_LABELS).
-- params: :batch, the window (:since, :until, :since_day, :until_day), :min_events in the
--   window, :share threshold (0-1, exclusive)
SELECT
    postal_code,
    events,
    outage_events,
    CAST(outage_events AS DOUBLE) / events AS outage_share
FROM (
    SELECT
        postal_code,
        CAST(sum(events) AS BIGINT) AS events,
        CAST(sum(CASE WHEN status IN (1, 2) THEN events ELSE 0 END) AS BIGINT) AS outage_events
    FROM gold_postal_status_minute
    WHERE {{visible}}
      AND {{in_window(minute, event_date)}}
      AND postal_code IS NOT NULL
    GROUP BY postal_code
) AS per_code
WHERE events >= :min_events
  AND CAST(outage_events AS DOUBLE) / events > :share
ORDER BY outage_share DESC, events DESC, postal_code
