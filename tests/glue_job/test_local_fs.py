"""The fork-free local file system: built where a JDK compiler is, then used by every local
session for ``file:`` paths, with Hadoop's own modes; Spark's defaults where it is not."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile

import pytest

from glue_job import local_fs

pytestmark = pytest.mark.glue  # the Glue suite's sessions write through it too


def test_no_jar_means_hadoops_own_file_system(tmp_path):
    assert local_fs.spark_conf(tmp_path / "missing.jar") == {}


def test_a_built_jar_maps_file_paths_for_both_hadoop_apis(tmp_path):
    jar = tmp_path / "fs.jar"
    jar.write_bytes(b"x")
    assert local_fs.spark_conf(jar) == {
        "spark.driver.extraClassPath": str(jar),
        "spark.hadoop.fs.file.impl": "telcopulse.ForklessLocalFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.file.impl": "telcopulse.ForklessLocalFileSystem$Fs",
    }


def test_make_install_built_the_jar_wherever_a_jdk_compiler_is():
    assert local_fs.JAR.is_file() == (shutil.which("javac") is not None)


@pytest.mark.skipif(not local_fs.JAR.is_file(), reason="no javac here, so no jar to use")
def test_the_shared_session_writes_through_it_with_hadoops_modes(spark, tmp_path):
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    uri = jvm.java.net.URI(f"file://{tmp_path}")
    assert jvm.org.apache.hadoop.fs.FileSystem.get(uri, conf).getClass().getName() == (
        local_fs.CLASS
    )
    context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(uri, conf)
    assert context.getDefaultFileSystem().getClass().getName() == f"{local_fs.CLASS}$Fs"

    where = tmp_path / "table"
    spark.range(4).selectExpr("id", "id % 2 AS part").write.partitionBy("part").parquet(str(where))
    assert sorted(r.id for r in spark.read.parquet(str(where)).collect()) == [0, 1, 2, 3]
    umask = os.umask(0)
    os.umask(umask)
    written = list(where.rglob("*"))
    assert any(p.suffix == ".crc" for p in written)  # checksums, as Hadoop's LocalFileSystem
    for path in written:
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("javac") is None, reason="building needs a JDK compiler")
def test_build_compiles_checks_and_only_then_installs_the_jar(tmp_path):
    jar = tmp_path / "share" / "fs.jar"
    said: list[str] = []
    assert local_fs.build(jar, log=said.append), said
    with zipfile.ZipFile(jar) as archive:
        names = set(archive.namelist())
    assert {
        "telcopulse/ForklessLocalFileSystem.class",
        "telcopulse/ForklessLocalFileSystem$Raw.class",
        "telcopulse/ForklessLocalFileSystem$Fs.class",
    } <= names
    assert [p.name for p in jar.parent.iterdir()] == ["fs.jar"]  # no partial left behind


@pytest.mark.skipif(shutil.which("javac") is None, reason="building needs a JDK compiler")
def test_a_source_that_does_not_compile_installs_nothing_and_says_why(tmp_path, monkeypatch):
    broken = tmp_path / "ForklessLocalFileSystem.java"
    broken.write_text("package telcopulse; public class ForklessLocalFileSystem { oops }\n")
    monkeypatch.setattr(local_fs, "SOURCE", broken)
    jar = tmp_path / "share" / "fs.jar"
    said: list[str] = []
    assert not local_fs.build(jar, log=said.append)
    assert len(said) == 1
    assert said[0].startswith("fork-free local file system not built (javac")
    assert list(jar.parent.iterdir()) == []
