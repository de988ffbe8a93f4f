-- The newest quarantined records in a window, raw payloads cut to 2,000 characters
-- (payload_chars and base64_chars give the full lengths). payload_base64 is set only when
-- the record was not UTF-8, and then it is the faithful copy.
-- params: :batch, the window of ingest times (:since, :until, :since_day, :until_day),
--   :reason (a reason code, '' for every reason)
SELECT
    ingest_time,
    batch_id,
    shard_id,
    sequence_number,
    event_id,
    reasons,
    substr(payload, 1, 2000) AS payload,
    length(payload) AS payload_chars,
    substr(payload_base64, 1, 2000) AS payload_base64,
    length(payload_base64) AS base64_chars
FROM quarantine
WHERE {{visible}}
  AND {{in_window(ingest_time, ingest_date)}}
  AND (:reason = '' OR contains(reasons, :reason))
ORDER BY ingest_time DESC, shard_id, sequence_number DESC
LIMIT 20
