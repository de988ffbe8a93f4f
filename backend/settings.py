"""Settings (all layers): one typed object read from ``TELCOPULSE_*`` environment variables.

Explicit keyword arguments beat the environment; a missing or invalid variable
fails early with a one-line message naming it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from glue_job.defaults import (
    DEFAULT_COMPACT_AFTER,
    DEFAULT_DEDUP_HORIZON_HOURS,
    DEFAULT_GRACE_SECONDS,
    DEFAULT_MAX_RECORDS_PER_SHARD,
    DEFAULT_TRIGGER_SECONDS,
)

ENV_PREFIX = "TELCOPULSE_"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    mode: Literal["local", "aws"] = "local"
    home: Path = Field(default=Path(".telcopulse"), description="local data directory")

    # stream
    stream_name: str = "telcopulse-events"
    region: str = "us-east-1"
    kinesis_endpoint: str | None = None  # local default: the emulator's URL
    emulator_port: int = Field(default=4567, ge=1, le=65535)
    shards: int = Field(default=2, ge=1, le=500)

    # stream job (defaults: glue_job.defaults)
    trigger_seconds: float = Field(default=DEFAULT_TRIGGER_SECONDS, gt=0)
    max_records_per_shard: int = Field(default=DEFAULT_MAX_RECORDS_PER_SHARD, ge=100)
    dedup_horizon_hours: int = Field(default=DEFAULT_DEDUP_HORIZON_HOURS, ge=1)
    # Gold, quarantine and _ops compaction (glue_job.compaction).
    compact_after_batches: int = Field(default=DEFAULT_COMPACT_AFTER, ge=2)
    compaction_grace_seconds: float = Field(default=DEFAULT_GRACE_SECONDS, ge=0)

    # lake and query layer
    lake_uri: str | None = None  # local default: <home>/lake
    # aws only
    stack_name: str = Field(default="telcopulse", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,100}$")
    project_name: str = Field(  # the stack's ProjectName: prefix of every resource name
        default="telcopulse", pattern=r"^[a-z][a-z0-9-]{1,20}$"
    )
    athena_workgroup: str | None = None
    athena_database: str | None = None
    athena_output: str | None = None

    # dashboard
    refresh_seconds: int = Field(default=10, ge=5, le=600)
    # The Map page's basemap: CARTO's tiles (no token; the viewer's browser fetches them),
    # or none for air-gapped sites.
    basemap: Literal["carto", "none"] = "carto"
    dashboard_port: int = Field(default=8501, ge=1, le=65535)
    freshness_amber_seconds: int = Field(default=60, ge=1)
    freshness_red_seconds: int = Field(default=300, ge=1)
    # Home-page alerts
    alert_outage_share: float = Field(default=0.2, gt=0, le=1)  # OOS + emergency-only share
    alert_outage_window_minutes: int = Field(default=15, ge=1)
    alert_signal_drop_db: float = Field(default=5.0, gt=0)  # vs the previous hour
    alert_min_events: int = Field(default=20, ge=1)  # ignore places/operators with fewer

    @model_validator(mode="after")
    def _aws_needs_its_resources(self) -> Settings:
        if self.mode == "aws":
            missing = [
                name
                for name in ("lake_uri", "athena_workgroup", "athena_database")
                if getattr(self, name) in (None, "")
            ]
            if missing:
                raise ValueError(
                    "aws mode needs " + ", ".join(ENV_PREFIX + m.upper() for m in missing)
                )
        return self

    @cached_property
    def lake(self) -> str:
        """Lake root: an S3 URI in aws mode, an absolute local path otherwise."""
        if self.lake_uri:
            return self.lake_uri.rstrip("/")
        return str((self.home / "lake").resolve())

    @property
    def checkpoint_dir(self) -> str:
        return str((self.home / "checkpoints" / "stream").resolve())

    @property
    def stream_failure_log(self) -> Path:
        """Where `telcopulse stream` keeps the whole trace of the failure it stopped with."""
        return (self.home / "logs" / "stream-failure.log").resolve()

    @property
    def emulator_dir(self) -> Path:
        return (self.home / "kinesis").resolve()

    @property
    def endpoint_url(self) -> str | None:
        """Kinesis endpoint; ``None`` means the real AWS endpoint for the region."""
        if self.kinesis_endpoint:
            return self.kinesis_endpoint
        if self.mode == "local":
            return f"http://127.0.0.1:{self.emulator_port}"
        return None


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides (which win)."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        name = ENV_PREFIX + field.upper() if field else "settings"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(message if not field else f"{name}: {message}")
    return "invalid settings: " + "; ".join(parts)
