"""Sink (all layers): batch-keyed Parquet tables under one root, a local path or an s3:// URI.

Each table is ``<root>/<path>/<date partitions>/commit=N/*.parquet`` (``glue_job.tables``).
Directory work goes through Hadoop's FileSystem API, so the same code runs on a laptop and
on Glue against S3.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from glue_job.schemas import file_schema
from glue_job.tables import COMMIT_DIR, TABLES

# Parquet row groups of about this size: DuckDB and Athena skip a row group whose min/max
# statistics miss a query's range, so a compacted day read for one hour reads about an hour.
ROW_GROUP_BYTES = 256 * 1024


class ParquetLake:
    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/")

    def path(self, table: str) -> str:
        return f"{self.root}/{TABLES[table].path}"

    def _fs(self, path: str):
        jvm = self.spark.sparkContext._jvm
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        return hpath, hpath.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())

    def _glob(self, pattern: str) -> list:
        hpath, fs = self._fs(pattern)
        return [status.getPath() for status in fs.globStatus(hpath) or []]

    def _delete(self, paths) -> int:
        deleted = 0
        for hpath in paths:
            if hpath.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()).delete(
                hpath, True
            ):
                deleted += 1
        return deleted

    def _commit_pattern(self, table: str, commit: int | str = "*") -> str:
        depth = len(TABLES[table].partitions)
        return "/".join([self.path(table), *["*"] * depth, f"{COMMIT_DIR}={commit}"])

    def clear_batch(self, table: str, commit: int) -> None:
        """Remove whatever an earlier attempt of batch ``commit`` left in ``table``."""
        self._delete(self._glob(self._commit_pattern(table, commit)))

    def clear_commit(self, commit: int) -> None:
        """Remove what an earlier attempt of batch ``commit`` left anywhere in the lake."""
        for table in TABLES:
            self.clear_batch(table, commit)

    def write(
        self, table: str, df: DataFrame, commit: int, *, replace: bool = True, files: int = 1
    ) -> int:
        """Write ``df`` as part of batch ``commit``; return the rows written.

        ``replace`` first removes what an earlier attempt of the batch wrote to the table;
        compaction appends to what the batch itself wrote (``replace=False``). ``files``
        per partition (at most as many as ``df`` has partitions): more write in parallel.
        """
        if replace:
            self.clear_batch(table, commit)
        spec = TABLES[table]
        names = [name for name, _ in spec.columns]
        out = df
        if "batch_id" in names and "batch_id" not in df.columns:
            out = out.withColumn("batch_id", F.lit(commit).cast("long"))
        out = out.withColumn("commit_id", F.lit(commit).cast("long"))
        out = out.withColumn(COMMIT_DIR, F.lit(commit).cast("long"))
        # Counting while writing saves a Spark job per table.
        written = Observation(f"{table}-{commit}-{id(df)}")
        frame = (
            out.select(*names, *spec.partitions, COMMIT_DIR)
            .observe(written, F.count(F.lit(1)).alias("rows"))
            .coalesce(files)
        )
        self._save(table, frame.sortWithinPartitions(*spec.sort_by) if spec.sort_by else frame)
        return int(written.get["rows"])

    def _save(self, table: str, frame: DataFrame) -> None:
        spec = TABLES[table]
        (
            frame.write.mode("append")
            .option("parquet.block.size", ROW_GROUP_BYTES)
            .partitionBy(*spec.partitions, COMMIT_DIR)
            .parquet(self.path(table))
        )

    def write_committed(self, table: str, df: DataFrame) -> int:
        """Bulk load (benchmarks): rows that carry their own ``commit_id`` (and ``batch_id``
        where the table has one), each written under its own commit directory."""
        spec = TABLES[table]
        written = Observation(f"{table}-bulk-{id(df)}")
        frame = (
            df.withColumn(COMMIT_DIR, F.col("commit_id"))
            .select(*[name for name, _ in spec.columns], *spec.partitions, COMMIT_DIR)
            .observe(written, F.count(F.lit(1)).alias("rows"))
            .repartition(*spec.partitions, COMMIT_DIR)
        )
        if spec.sort_by:
            frame = frame.sortWithinPartitions(*spec.partitions, COMMIT_DIR, *spec.sort_by)
        self._save(table, frame)
        return int(written.get["rows"])

    def commit_dirs(self, table: str) -> list[tuple[str, int]]:
        """(partition path, commit) of every commit directory of ``table``; the path is
        ``Table.partition_path`` form, "" for a table without partitions."""
        found = []
        levels = len(TABLES[table].partitions)
        for hpath in self._glob(self._commit_pattern(table)):
            commit = int(hpath.getName().split("=", 1)[1])
            names, parent = [], hpath.getParent()
            for _ in range(levels):
                names.insert(0, parent.getName())
                parent = parent.getParent()
            found.append(("/".join(names), commit))
        return found

    def last_committed(self) -> int | None:
        """The newest batch whose ``_ops`` row exists: the commit point of every batch.

        A commit directory of ``_ops`` can also hold a compaction's rows, written before the
        batch's own row, so a directory alone does not prove the commit: its rows do.
        """
        for commit in sorted({c for _, c in self.commit_dirs("ops")}, reverse=True):
            paths = [str(p) for p in self._glob(self._commit_pattern("ops", commit))]
            own = self.spark.read.parquet(*paths).where(F.col("batch_id") == commit)
            if own.limit(1).count():
                return commit
        return None

    def exists(self, table: str) -> bool:
        hpath, fs = self._fs(self.path(table))
        return bool(fs.exists(hpath))

    def read(self, table: str) -> DataFrame | None:
        """Every file of ``table``, current or not; filter on ``commit_id`` to choose."""
        if not self.exists(table):
            return None
        schema = file_schema(TABLES[table])
        return self.spark.read.schema(schema).parquet(self.path(table)).drop(COMMIT_DIR)

    def read_partition(self, table: str, partition: str, first: int, last: int) -> DataFrame | None:
        """Rows of one partition (``Table.partition_path``) from commits ``first`` to ``last``."""
        where = f"{self.path(table)}/{partition}".rstrip("/")
        hpath, fs = self._fs(where)
        if not fs.exists(hpath):
            return None
        reader = self.spark.read.schema(file_schema(TABLES[table]))
        frame = reader.option("basePath", self.path(table)).parquet(where)
        return frame.where(F.col("commit_id").between(first, last)).drop(COMMIT_DIR)

    def delete_older_commits(self, table: str, partition: str, below: int) -> int:
        """Delete the commit directories of one partition older than ``below``; return how
        many went."""
        pattern = "/".join(p for p in (self.path(table), partition, f"{COMMIT_DIR}=*") if p)
        stale = [p for p in self._glob(pattern) if int(p.getName().split("=", 1)[1]) < below]
        return self._delete(stale)

    def delete_commit(self, table: str, commit: int) -> int:
        return self._delete(self._glob(self._commit_pattern(table, commit)))
