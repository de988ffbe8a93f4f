"""Settings (all layers): explicit arguments, the environment, aws mode's needs, defaults."""

from __future__ import annotations

import inspect
import os
from datetime import timedelta
from pathlib import Path

import pytest

from backend.settings import ENV_PREFIX, Settings, SettingsError, load_settings
from glue_job import defaults
from glue_job.compaction import CompactionPlan
from glue_job.dedup import SeenEvents
from glue_job.local_entry import run_stream

AWS_RESOURCES = {
    "lake_uri": "s3://telcopulse-lake/",
    "athena_workgroup": "telcopulse",
    "athena_database": "telcopulse",
}


@pytest.fixture(autouse=True)
def no_telcopulse_environment(monkeypatch):
    """Only what a test sets: none of the TELCOPULSE_* variables of the shell running it."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def test_an_explicit_argument_beats_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TELCOPULSE_STREAM_NAME", "from-the-environment")
    monkeypatch.setenv("TELCOPULSE_SHARDS", "4")
    monkeypatch.setenv("TELCOPULSE_HOME", str(tmp_path / "environment"))

    settings = load_settings(stream_name="from-an-argument", home=tmp_path / "argument")

    assert settings.stream_name == "from-an-argument"
    assert settings.home == tmp_path / "argument"
    assert settings.lake == str((tmp_path / "argument" / "lake").resolve())
    assert settings.shards == 4  # what no argument names still comes from the environment


def test_an_argument_left_out_as_none_leaves_the_environment(monkeypatch, tmp_path):
    # The CLI passes every option, given or not: an option not given must not hide the variable.
    monkeypatch.setenv("TELCOPULSE_HOME", str(tmp_path / "environment"))

    assert load_settings(home=None).home == tmp_path / "environment"


def test_the_environment_beats_the_defaults(monkeypatch):
    monkeypatch.setenv("TELCOPULSE_TRIGGER_SECONDS", "5")
    monkeypatch.setenv("TELCOPULSE_MODE", "local")

    settings = load_settings()

    assert settings.trigger_seconds == 5.0
    assert settings.mode == "local"
    assert settings.stream_name == "telcopulse-events"


@pytest.mark.parametrize("missing", sorted(AWS_RESOURCES))
def test_aws_mode_names_the_variable_it_misses(monkeypatch, missing):
    monkeypatch.setenv("TELCOPULSE_MODE", "aws")
    for name, value in AWS_RESOURCES.items():
        if name != missing:
            monkeypatch.setenv(ENV_PREFIX + name.upper(), value)

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert str(raised.value) == (f"invalid settings: aws mode needs {ENV_PREFIX}{missing.upper()}")


def test_aws_mode_names_every_variable_it_misses_on_one_line(monkeypatch):
    monkeypatch.setenv("TELCOPULSE_MODE", "aws")
    monkeypatch.setenv("TELCOPULSE_ATHENA_DATABASE", "")  # set but empty is missing too

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert str(raised.value) == (
        "invalid settings: aws mode needs TELCOPULSE_LAKE_URI, TELCOPULSE_ATHENA_WORKGROUP, "
        "TELCOPULSE_ATHENA_DATABASE"
    )


def test_aws_mode_takes_its_resources_from_arguments(monkeypatch):
    monkeypatch.setenv("TELCOPULSE_MODE", "aws")

    settings = load_settings(**AWS_RESOURCES)

    assert settings.mode == "aws"
    assert settings.lake == "s3://telcopulse-lake"
    assert settings.endpoint_url is None  # the real Kinesis endpoint of the region


def test_an_invalid_variable_is_named(monkeypatch):
    monkeypatch.setenv("TELCOPULSE_SHARDS", "0")

    with pytest.raises(SettingsError, match=r"^invalid settings: TELCOPULSE_SHARDS: ") as raised:
        load_settings()

    assert "\n" not in str(raised.value)


def test_an_invalid_argument_is_named_like_its_variable():
    with pytest.raises(SettingsError, match=r"^invalid settings: TELCOPULSE_MODE: "):
        load_settings(mode="cloud")


def test_the_stream_jobs_defaults_come_from_glue_job():
    fields = Settings.model_fields
    assert fields["trigger_seconds"].default == defaults.DEFAULT_TRIGGER_SECONDS
    assert fields["max_records_per_shard"].default == defaults.DEFAULT_MAX_RECORDS_PER_SHARD
    assert fields["dedup_horizon_hours"].default == defaults.DEFAULT_DEDUP_HORIZON_HOURS
    assert fields["compact_after_batches"].default == defaults.DEFAULT_COMPACT_AFTER
    assert fields["compaction_grace_seconds"].default == defaults.DEFAULT_GRACE_SECONDS

    # The job run without settings (its own defaults) runs as the settings would run it.
    job = inspect.signature(run_stream).parameters
    for name in (
        "trigger_seconds",
        "max_records_per_shard",
        "dedup_horizon_hours",
        "compact_after_batches",
        "compaction_grace_seconds",
    ):
        assert job[name].default == fields[name].default, name
    plan = CompactionPlan()
    assert plan.compact_after == fields["compact_after_batches"].default
    assert plan.grace_seconds == fields["compaction_grace_seconds"].default
    assert SeenEvents().horizon == timedelta(hours=fields["dedup_horizon_hours"].default)


def test_local_paths_live_under_home(tmp_path):
    settings = load_settings(home=tmp_path)

    assert Path(settings.lake) == (tmp_path / "lake").resolve()
    assert Path(settings.checkpoint_dir) == (tmp_path / "checkpoints" / "stream").resolve()
    assert settings.emulator_dir == (tmp_path / "kinesis").resolve()
    assert settings.endpoint_url == f"http://127.0.0.1:{settings.emulator_port}"
