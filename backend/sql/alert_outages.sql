-- Outage alert: postal codes where OUT_OF_SERVICE (1) and EMERGENCY_ONLY (2) events make
-- up more than a share of all events in a window (glue_job.contract.STATUS_LABELS).
-- params: committed batch_id, since, until (timestamps, bucket start), since, until (dates),
--   minimum events in the window, share threshold (0-1, exclusive)
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
    WHERE ? BETWEEN commit_id AND visible_through
      AND minute >= CAST(? AS TIMESTAMP)
      AND minute < CAST(? AS TIMESTAMP)
      AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
      AND postal_code IS NOT NULL
    GROUP BY postal_code
) AS per_code
WHERE events >= ?
  AND CAST(outage_events AS DOUBLE) / events > ?
ORDER BY outage_share DESC, events DESC, postal_code
