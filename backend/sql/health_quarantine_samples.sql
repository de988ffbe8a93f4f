-- The newest quarantined records in a window, raw payloads cut to 2,000 characters
-- (payload_chars and base64_chars give the full lengths). payload_base64 is set only when
-- the record was not UTF-8, and then it is the faithful copy.
-- params: committed batch_id, since, until (timestamps, ingest time), since, until (dates),
--   then a reason code twice ('' for every reason)
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
WHERE ? BETWEEN commit_id AND visible_through
  AND ingest_time >= CAST(? AS TIMESTAMP)
  AND ingest_time < CAST(? AS TIMESTAMP)
  AND ingest_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
  AND (? = '' OR contains(reasons, ?))
ORDER BY ingest_time DESC, shard_id, sequence_number DESC
LIMIT 20
