-- Freshness of each layer, from _ops alone: for bronze, silver and gold, when the newest
-- batch that wrote rows to the layer committed, and the newest event and arrival times
-- committed there. Bronze's newest event is that of its newest valid record.
-- params: :batch
SELECT
    max(CASE WHEN bronze_rows > 0 THEN batch_end END) AS bronze_last_write,
    max(CASE WHEN bronze_rows > 0 THEN max_event_time END) AS bronze_newest_event,
    max(CASE WHEN bronze_rows > 0 THEN max_arrival_time END) AS bronze_newest_arrival,
    max(CASE WHEN silver_rows > 0 THEN batch_end END) AS silver_last_write,
    max(CASE WHEN silver_rows > 0 THEN max_event_time END) AS silver_newest_event,
    max(CASE WHEN silver_rows > 0 THEN max_arrival_time END) AS silver_newest_arrival,
    max(CASE WHEN operator_minute_rows + postal_status_minute_rows > 0 THEN batch_end END)
        AS gold_last_write,
    max(CASE WHEN operator_minute_rows + postal_status_minute_rows > 0 THEN max_event_time END)
        AS gold_newest_event,
    max(CASE WHEN operator_minute_rows + postal_status_minute_rows > 0 THEN max_arrival_time END)
        AS gold_newest_arrival
FROM ops
WHERE {{visible}}
