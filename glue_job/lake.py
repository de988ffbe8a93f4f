"""Sink (all layers): batch-keyed Parquet tables under one root, a local path or an s3:// URI.

Each table is ``<root>/<path>/<date partitions>/commit=N/*.parquet`` (``glue_job.tables``).
Directory work goes through Hadoop's FileSystem API, so the same code runs on a laptop and
on Glue against S3.

Before batch N writes anything, it records in an attempt journal (``_attempts/N.json``)
every partition it is about to write; the journal goes once the batch is done. A journal
found when a batch starts is what an attempt that failed left behind, in this process
(Glue's in-process retries) or in one that died: its partitions' ``commit=N``
directories are deleted, and only those, so clearing costs the same however long the
lake's history is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from glue_job.batch_values import batch_value
from glue_job.schemas import file_schema
from glue_job.tables import COMMIT_DIR, TABLES

# Parquet row groups of about this size: DuckDB and Athena skip a row group whose min/max
# statistics miss a query's range, so a compacted day read for one hour reads about an hour.
ROW_GROUP_BYTES = 256 * 1024
# Attempt journals, beside the tables: <root>/_attempts/<batch>.json. The marker says every
# writer of this lake keeps journals, so no attempt can have left files that none names.
ATTEMPTS_DIR = "_attempts"
JOURNALED_MARKER = "_journaled"

Target = tuple[str, str]  # (table, Table.partition_path): a directory a batch writes into


class ParquetLake:
    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/")
        # Directory listings this lake made, and the paths they returned: what a batch
        # costs in S3 LIST requests (tests show it does not grow with history).
        self.listings = 0
        self.listed_paths = 0

    def path(self, table: str) -> str:
        return f"{self.root}/{TABLES[table].path}"

    def _fs(self, path: str):
        # Hadoop's Path class: the session's py4j view walks the package path once
        # (glue_job.py4j_lookups, installed by glue_job.spark_conf.tune_py4j).
        hpath = self.spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
        return hpath, hpath.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())

    def _glob(self, pattern: str) -> list:
        hpath, fs = self._fs(pattern)
        found = [status.getPath() for status in fs.globStatus(hpath) or []]
        self.listings += 1
        self.listed_paths += len(found)
        return found

    def _list(self, directory: str) -> list:
        """The entries of one directory (none when it does not exist)."""
        hpath, fs = self._fs(directory)
        self.listings += 1
        if not fs.exists(hpath):
            return []
        found = [status.getPath() for status in fs.listStatus(hpath)]
        self.listed_paths += len(found)
        return found

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

    def sweep_commit(self, commit: int) -> None:
        """Remove ``commit=N`` directories from every partition of every table: for a lake
        written before attempt journals, whose leftovers no journal names. Lists the
        whole lake, so it runs at most once per start, and never on a journaled lake."""
        for table in TABLES:
            self._delete(self._glob(self._commit_pattern(table, commit)))

    # -- attempt journals ---------------------------------------------------------------
    def _journal(self, commit: int | str) -> str:
        return f"{self.root}/{ATTEMPTS_DIR}/{commit}.json"

    def _write_text(self, path: str, text: str) -> None:
        hpath, fs = self._fs(path)
        out = fs.create(hpath, True)
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()

    def _read_text(self, path: str) -> str:
        hpath, fs = self._fs(path)
        stream = fs.open(hpath)
        try:
            jvm = self.spark.sparkContext._jvm
            return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def is_journaled(self) -> bool:
        hpath, fs = self._fs(self._journal(JOURNALED_MARKER))
        return bool(fs.exists(hpath))

    def record_attempt(self, commit: int, targets: Iterable[Target]) -> None:
        """Journal the partitions batch ``commit`` is about to write, before it writes."""
        body = {"batch_id": commit, "targets": sorted({(t, p) for t, p in targets})}
        if not self.is_journaled():
            self._write_text(self._journal(JOURNALED_MARKER), "{}")
        self._write_text(self._journal(commit), json.dumps(body))

    def attempts(self) -> list[int]:
        """Batches with a journal: each started and did not finish (one listing, of a
        directory that holds a file or two)."""
        found = []
        for hpath in self._list(f"{self.root}/{ATTEMPTS_DIR}"):
            stem = hpath.getName().removesuffix(".json")
            if stem.isdigit():
                found.append(int(stem))
        return sorted(found)

    def attempt_targets(self, commit: int) -> list[Target] | None:
        """The partitions the journal of ``commit`` names; None when it cannot be read (a
        writer killed while writing it had written no data yet, but sweep to be safe)."""
        try:
            body = json.loads(self._read_text(self._journal(commit)))
            return [(str(t), str(p)) for t, p in body["targets"]]
        except Exception:  # noqa: BLE001 - an unreadable journal means: sweep
            return None

    def clear_attempt(self, commit: int, targets: list[Target] | None) -> None:
        """Delete what an attempt of batch ``commit`` wrote: the ``commit=N`` directory of
        each partition its journal names (every table's, when it names none)."""
        if targets is None:
            self.sweep_commit(commit)
            return
        paths = (self._commit_path(table, partition, commit) for table, partition in targets)
        self._delete(self._fs(path)[0] for path in paths)

    def forget_attempt(self, commit: int) -> None:
        self._delete([self._fs(self._journal(commit))[0]])

    def _commit_path(self, table: str, partition: str, commit: int) -> str:
        return "/".join(p for p in (self.path(table), partition, f"{COMMIT_DIR}={commit}") if p)

    def holds_commit(self, commit: int, ops_partition: str) -> bool:
        """Whether batch ``commit`` committed: its own row is in ``_ops`` (a compaction of
        ``_ops`` may have put other batches' rows in the same directory)."""
        where = self._commit_path("ops", ops_partition, commit)
        hpath, fs = self._fs(where)
        if not fs.exists(hpath):
            return False
        rows = self.spark.read.schema(file_schema(TABLES["ops"])).parquet(where)
        return bool(rows.where(F.col("batch_id") == commit).limit(1).count())

    def write(self, table: str, df: DataFrame, commit: int, *, files: int = 1) -> int:
        """Add ``df`` to batch ``commit``'s files of ``table``; return the rows written.

        Appends: the batch started from a clean slate (its attempt journal), and
        compaction adds folded rows beside what the batch itself wrote. ``files`` per
        partition (at most as many as ``df`` has partitions): more write in parallel.
        """
        spec = TABLES[table]
        names = [name for name, _ in spec.columns]
        out = df
        commit_value = batch_value(commit)  # not F.lit: see glue_job.batch_values
        if "batch_id" in names and "batch_id" not in df.columns:
            out = out.withColumn("batch_id", commit_value)
        out = out.withColumn("commit_id", commit_value)
        out = out.withColumn(COMMIT_DIR, commit_value)
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
            own = self.read_commit("ops", commit)
            if own is not None and own.where(F.col("batch_id") == commit).limit(1).count():
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

    def read_partitions(self, table: str, partitions: Iterable[str]) -> DataFrame | None:
        """Every file of the given partitions (``Table.partition_path``) that exist, and no
        others: nothing outside them is listed."""
        paths = []
        for partition in sorted(set(partitions)):
            where = f"{self.path(table)}/{partition}"
            hpath, fs = self._fs(where)
            if fs.exists(hpath):
                paths.append(where)
        if not paths:
            return None
        reader = self.spark.read.schema(file_schema(TABLES[table]))
        return reader.option("basePath", self.path(table)).parquet(*paths).drop(COMMIT_DIR)

    def read_partition(self, table: str, partition: str, first: int, last: int) -> DataFrame | None:
        """Rows of one partition (``Table.partition_path``) from commits ``first`` to ``last``."""
        where = f"{self.path(table)}/{partition}".rstrip("/")
        hpath, fs = self._fs(where)
        if not fs.exists(hpath):
            return None
        reader = self.spark.read.schema(file_schema(TABLES[table]))
        frame = reader.option("basePath", self.path(table)).parquet(where)
        # The bounds as batch values, not literals: compaction reads a partition this way every
        # few batches, and the same generated code serves them all (glue_job.batch_values).
        # Parquet no longer skips row groups by these bounds, so the partition's superseded
        # files still within their grace are read whole and filtered here.
        commits = F.col("commit_id").between(batch_value(first), batch_value(last))
        return frame.where(commits).drop(COMMIT_DIR)

    def read_current(self, table: str, firsts: dict[str, int], last: int) -> DataFrame | None:
        """Rows of several partitions at once, each from its own first commit to ``last``
        (``firsts`` maps ``Table.partition_path`` to that commit): one Spark read however
        many partitions, for rollups that seal a long history in one batch."""
        rows = self.read_partitions(table, firsts)
        if rows is None:
            return None
        spec = TABLES[table]
        bounds = self.spark.createDataFrame(
            list(firsts.items()),
            "partition_path string, first_commit long",
        )
        path = F.concat_ws(
            "/", *(F.concat(F.lit(f"{p}="), F.col(p).cast("string")) for p in spec.partitions)
        )
        return (
            rows.join(F.broadcast(bounds), path == bounds["partition_path"])
            .where(F.col("commit_id").between(F.col("first_commit"), batch_value(last)))
            .drop("partition_path", "first_commit")
        )

    def read_commit(self, table: str, commit: int) -> DataFrame | None:
        """Every file batch ``commit`` wrote to ``table`` (a commit row, say)."""
        paths = [str(p) for p in self._glob(self._commit_pattern(table, commit))]
        if not paths:
            return None
        reader = self.spark.read.schema(file_schema(TABLES[table]))
        return reader.option("basePath", self.path(table)).parquet(*paths).drop(COMMIT_DIR)

    def delete_older_commits(self, table: str, partition: str, below: int) -> int:
        """Delete the commit directories of one partition older than ``below``; return how
        many went."""
        pattern = "/".join(p for p in (self.path(table), partition, f"{COMMIT_DIR}=*") if p)
        stale = [p for p in self._glob(pattern) if int(p.getName().split("=", 1)[1]) < below]
        return self._delete(stale)

    def delete_commit(self, table: str, commit: int) -> int:
        return self._delete(self._glob(self._commit_pattern(table, commit)))
