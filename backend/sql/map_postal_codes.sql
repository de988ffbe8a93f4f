-- Events per postal code over a window, placed at the centroid of the positions they
-- carried: Σ latitude_sum / Σ position_count (NULL when none carried one). Events without
-- a postal code form one row with postal_code NULL, so the page can say what it leaves out.
-- params: out-of-service status code,
--   committed batch_id, since, until (timestamps, bucket start), since, until (dates)
SELECT
    postal_code,
    CAST(sum(events) AS BIGINT) AS events,
    CAST(sum(CASE WHEN status = ? THEN events ELSE 0 END) AS BIGINT) AS out_of_service_events,
    sum(signal_sum) / NULLIF(sum(signal_count), 0) AS avg_signal_dbm,
    CAST(sum(signal_count) AS BIGINT) AS signal_samples,
    CAST(sum(position_count) AS BIGINT) AS positions,
    sum(latitude_sum) / NULLIF(sum(position_count), 0) AS latitude,
    sum(longitude_sum) / NULLIF(sum(position_count), 0) AS longitude
FROM gold_postal_status_minute
WHERE ? BETWEEN commit_id AND visible_through
  AND minute >= CAST(? AS TIMESTAMP)
  AND minute < CAST(? AS TIMESTAMP)
  AND event_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
GROUP BY postal_code
ORDER BY postal_code NULLS FIRST
