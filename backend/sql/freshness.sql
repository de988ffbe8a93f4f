-- How fresh the committed data is, from the committed batch's own _ops row: it carries the
-- running figures over every batch up to it that read records, and over those that wrote
-- silver (glue_job.batch.SoFar), so one row answers for the whole history: Home's
-- freshness line and Pipeline Health's layers. DuckDB lists only the newest batch_date
-- partition for it (backend.ranges.NEWEST); when that partition does not hold the batch
-- (a dashboard snapshot older than midnight's first commit) or its row predates these
-- columns, backend.home reads freshness_scan.sql instead, which computes the same from
-- every row.
-- params: :batch
SELECT
    batch_id,
    last_commit_so_far AS last_commit,
    newest_event_so_far AS newest_event,
    newest_arrival_so_far AS newest_arrival,
    batches_so_far AS batches,
    silver_commit_so_far AS silver_last_commit,
    silver_arrival_so_far AS silver_newest_arrival
FROM ops_files
WHERE batch_id <= :batch
ORDER BY batch_id DESC
LIMIT 1
