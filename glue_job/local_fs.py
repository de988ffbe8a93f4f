"""Fork-free local file system (local stream job): Hadoop's, minus a `chmod` per file.

Hadoop's ``RawLocalFileSystem.setPermission`` changes a mode through ``NativeIO`` when
the native library (libhadoop) is loaded, and otherwise runs ``chmod`` in a new process
(``Shell.execCommand``; ``javap -c`` of the ``hadoop-client-api`` jar PySpark ships shows
both branches). It calls it for every directory it makes and every file it creates,
``.crc`` files included, and PySpark ships no libhadoop. So each small Parquet write
forked about ten ``chmod`` processes from the JVM, and a micro-batch about sixty:
counted with Java Flight Recorder's ``jdk.ProcessStart`` events over a 2,500-record batch.
Others hit the same fallback (intel/BigDL#3662 has the stack; the fix it suggests,
libhadoop on ``LD_LIBRARY_PATH``, is no package this project's machines can install).
globalmentor's hadoop-bare-naked-local-fs replaces the local file system for Windows,
but it skips permissions altogether and is published only on Maven Central, which these
machines cannot reach.

``ForklessLocalFileSystem.java`` (beside this module) is Hadoop's ``LocalFileSystem``,
checksums and all, over a ``RawLocalFileSystem`` whose ``setPermission`` sets the same
mode through ``java.nio``; and the same for ``FileContext``, which Spark's streaming
checkpoint writes through. ``make install`` compiles it against the venv's own Hadoop
jar (``python -m glue_job.local_fs``), checks it in a Spark session, and only then puts
the jar in the venv; ``build_spark`` maps ``file:`` paths to it when it is there. Without
a JDK compiler, nothing is built and Spark keeps Hadoop's own. S3 (Glue) is untouched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

JAR = Path(sys.prefix) / "share" / "telcopulse" / "telcopulse-local-fs.jar"
SOURCE = Path(__file__).with_name("ForklessLocalFileSystem.java")
CLASS = "telcopulse.ForklessLocalFileSystem"


def spark_conf(jar: Path = JAR) -> dict[str, str]:
    """Spark settings that put ``file:`` paths on the fork-free file system; none when the
    jar has not been built."""
    if not jar.is_file():
        return {}
    return {
        "spark.driver.extraClassPath": str(jar),
        "spark.hadoop.fs.file.impl": CLASS,
        "spark.hadoop.fs.AbstractFileSystem.file.impl": f"{CLASS}$Fs",
    }


def _hadoop_jar() -> Path | None:
    import pyspark

    found = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    return found[-1] if found else None


def build(jar: Path = JAR, log=print) -> bool:
    """Compile, check and install the jar; False, with a line said, when it could not be
    (Spark then keeps Hadoop's file system, which only costs the forks)."""
    javac, hadoop = shutil.which("javac"), _hadoop_jar()
    if javac is None or hadoop is None:
        missing = "javac" if javac is None else "Hadoop jar"
        log(f"fork-free local file system not built: no {missing}")
        return False
    started = time.monotonic()
    jar.parent.mkdir(parents=True, exist_ok=True)
    partial = jar.with_name(f"{jar.name}.{os.getpid()}.partial")
    try:
        with tempfile.TemporaryDirectory(prefix="telcopulse-local-fs-") as work:
            classes = Path(work) / "classes"
            classes.mkdir()
            compile_ = [javac, "--release", "11", "-nowarn", "-cp", str(hadoop)]
            if not _step([*compile_, "-d", str(classes), str(SOURCE)], "javac", log):
                return False
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(classes.rglob("*.class")):
                    archive.write(path, path.relative_to(classes).as_posix())
        check_ = [sys.executable, "-m", "glue_job.local_fs", "--check", str(partial)]
        if not _step(check_, "check", log):
            return False
        os.replace(partial, jar)
    finally:
        partial.unlink(missing_ok=True)
    log(f"fork-free local file system: {jar} ({time.monotonic() - started:.0f} s)")
    return True


def _step(command: list[str], name: str, log) -> bool:
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        log(f"fork-free local file system not built ({name} failed: {lines[-1]})")
    return done.returncode == 0


def check(jar: Path) -> None:
    """A Spark session with the jar: Parquet and a checkpoint-style FileContext write land
    with Hadoop's modes (umask applied), through this file system, and read back."""
    from glue_job.spark_conf import build_spark

    spark = build_spark("telcopulse-local-fs-check", **spark_conf(jar))
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    with tempfile.TemporaryDirectory(prefix="telcopulse-local-fs-") as work:
        where = Path(work) / "table"
        spark.range(3).selectExpr("id", "id % 2 AS part").write.partitionBy("part").parquet(
            str(where)
        )
        assert spark.read.parquet(str(where)).count() == 3, "the Parquet written reads back"
        uri = jvm.java.net.URI(f"file://{work}")
        used = jvm.org.apache.hadoop.fs.FileSystem.get(uri, conf).getClass().getName()
        assert used == CLASS, f"file: paths use {used}"
        context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(uri, conf)
        options = spark.sparkContext._gateway.new_array(
            jvm.org.apache.hadoop.fs.Options.CreateOpts, 1
        )
        options[0] = jvm.org.apache.hadoop.fs.Options.CreateOpts.createParent()
        out = context.create(
            jvm.org.apache.hadoop.fs.Path(f"{work}/offsets/0"),
            jvm.java.util.EnumSet.of(jvm.org.apache.hadoop.fs.CreateFlag.CREATE),
            options,
        )
        out.close()
        used = context.getDefaultFileSystem().getClass().getName()
        assert used == f"{CLASS}$Fs", f"FileContext uses {used}"
        umask = os.umask(0)
        os.umask(umask)
        for path in where.rglob("*"):
            expected = (0o777 if path.is_dir() else 0o666) & ~umask
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == expected, f"{path} has mode {mode:o}, not {expected:o}"
        assert (Path(work) / "offsets" / "0").is_file(), "FileContext wrote its file"
    spark.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        check(args.check)
        return 0
    return 0 if build() else 1


if __name__ == "__main__":
    sys.exit(main())
