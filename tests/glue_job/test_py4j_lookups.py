"""glue_job.py4j_lookups on this runtime's session (Glue's Spark 3.5 too): each Java name is
looked up once, what is kept cannot change, and every answer is the one py4j gives."""

from __future__ import annotations

import pytest
from py4j.java_gateway import JVMView
from py4j.protocol import MEMORY_COMMAND_NAME, Py4JError
from pyspark.sql import Window
from pyspark.sql import functions as F

from glue_job.py4j_lookups import RememberingClass, RememberingView, remember_lookups

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)


@pytest.fixture
def calls(spark, monkeypatch) -> list[str]:
    """Every command the session's py4j client sends while the test runs, but for the
    ones that free a Java object a Python one no longer holds (sent whenever Python's
    garbage collector gets to it)."""
    client = spark.sparkContext._jvm._gateway_client
    sent: list[str] = []
    send = client.send_command

    def counting(command, *args, **kwargs):
        if not command.startswith(MEMORY_COMMAND_NAME):
            sent.append(command)
        return send(command, *args, **kwargs)

    monkeypatch.setattr(client, "send_command", counting)
    return sent


def test_the_session_shares_one_remembering_view(spark):
    jvm = spark.sparkContext._jvm
    assert isinstance(jvm, RememberingView)
    assert spark._jvm is jvm
    assert remember_lookups(jvm) is jvm  # a second call changes nothing


def test_a_class_and_its_static_method_are_looked_up_once(spark, calls):
    # A view of its own, the session's Java-side view: nothing looked up yet, whatever the
    # tests before this one asked of the session's.
    shared = spark.sparkContext._jvm
    jvm = remember_lookups(JVMView(shared._gateway_client, "test", id=shared._id))
    jvm.functions.lit(1)
    assert len(calls) == 3, calls  # the class, its method, the call
    calls.clear()
    assert jvm.functions.lit(1).toString() == "1"
    assert len(calls) == 2, calls  # the call itself, and toString: no lookup
    assert isinstance(jvm.functions, RememberingClass)
    assert jvm.functions._fqn == "org.apache.spark.sql.functions"


def test_a_package_path_is_walked_once(spark, calls):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path
    calls.clear()
    again = jvm.org.apache.hadoop.fs.Path
    assert again is path
    assert not calls
    assert again("/tmp/x").getName() == "x"


def test_a_static_fields_value_is_asked_for_every_time(spark, calls):
    integer = spark.sparkContext._jvm.java.lang.Integer
    assert integer.MAX_VALUE == 2**31 - 1
    calls.clear()
    assert integer.MAX_VALUE == 2**31 - 1
    assert len(calls) == 1


def test_a_name_that_fails_is_asked_again(spark, calls):
    integer = spark.sparkContext._jvm.java.lang.Integer
    for _ in range(2):
        calls.clear()
        with pytest.raises(Py4JError, match="noSuchMember does not exist"):
            _ = integer.noSuchMember
        assert len(calls) == 1


def test_pyspark_builds_the_same_columns(spark):
    frame = spark.range(3).select(
        F.col("id").alias("i"), F.sum(F.lit(2)).over(Window.partitionBy()).alias("twice")
    )
    assert [tuple(r) for r in frame.orderBy("i").collect()] == [(0, 6), (1, 6), (2, 6)]
