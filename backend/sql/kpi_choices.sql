-- What the KPI filters can offer: events per operator and postal code in a window.
-- params: :batch, the window (:since, :until, :since_day, :until_day)
SELECT
    operator,
    postal_code,
    CAST(sum(events) AS BIGINT) AS events
FROM gold_postal_status_minute
WHERE {{visible}}
  AND {{in_window(minute, event_date)}}
GROUP BY operator, postal_code
ORDER BY operator, postal_code NULLS FIRST
