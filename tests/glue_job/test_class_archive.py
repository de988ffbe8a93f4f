"""The JVM class archive: mapped by every local session once built, never installed damaged."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import PROJECT_ROOT

from glue_job import class_archive


def test_no_archive_means_no_jvm_option(tmp_path):
    assert class_archive.java_options(tmp_path / "missing.jsa") == ""


def test_a_built_archive_is_mapped_quietly(tmp_path):
    archive = tmp_path / "classes.jsa"
    archive.write_bytes(b"x")
    options = class_archive.java_options(archive).split()
    assert f"-XX:SharedArchiveFile={archive}" in options
    # A JVM that cannot use it (another JDK) falls back without a word on stderr.
    assert {"-Xshare:auto", "-Xlog:cds=off"} <= set(options)


@pytest.mark.skipif(
    not class_archive.ARCHIVE.is_file(), reason="this venv has no archive: make install builds it"
)
def test_the_shared_session_maps_the_venvs_archive(spark):
    jvm = spark.sparkContext._jvm
    runtime = jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert f"-XX:SharedArchiveFile={class_archive.ARCHIVE}" in arguments
    assert "sharing" in jvm.java.lang.System.getProperty("java.vm.info")


@pytest.mark.slow
def test_a_damaged_archive_fails_the_check(tmp_path):
    """The check maps the archive as a stream job would, but with ``-Xshare:on``, so a JVM
    that cannot map it fails instead of falling back; ``build`` moves an archive into place
    only after this check passed."""
    damaged = tmp_path / "damaged.jsa"
    damaged.write_bytes(b"\0" * 4096)
    check = subprocess.run(
        [sys.executable, "-m", "glue_job.class_archive", "--check", str(damaged)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode != 0
