"""Stream access (ingest layer): Kinesis clients, stream creation, and the stream probe.

The probe (``check_stream``) is what the Pipeline Health page and ``telcopulse status`` show
about the stream: it never raises, it says in one line why the endpoint did not answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from backend.settings import Settings

# The emulator accepts any credentials; real AWS uses the normal credential chain.
_LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def kinesis_client(
    settings: Settings, *, connect_timeout: float = 3, retries: int = 2, read_timeout: float = 30
):
    kwargs: dict = {
        "region_name": settings.region,
        "endpoint_url": settings.endpoint_url,
        "config": Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": retries, "mode": "standard"},
        ),
    }
    if settings.mode == "local":
        kwargs.update(_LOCAL_CREDENTIALS)
    return boto3.client("kinesis", **kwargs)


def ensure_stream(client, name: str, shards: int, *, timeout: float = 30) -> None:
    """Create the stream if it is missing and wait until it is ACTIVE.

    Looks before creating, so an identity that may only send (the stack's ProducerPolicy,
    without kinesis:CreateStream) can use a stream that exists.
    """
    try:
        client.describe_stream_summary(StreamName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        try:
            client.create_stream(StreamName=name, ShardCount=shards)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
    deadline = time.monotonic() + timeout
    while True:
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {name} is still {summary['StreamStatus']} after {timeout}s")
        time.sleep(0.2)


@dataclass(frozen=True)
class StreamStatus:
    """What the Kinesis endpoint said about the stream, or why it said nothing."""

    stream_name: str
    endpoint: str
    answers: bool  # the endpoint answered (even if only to say the stream is missing)
    status: str | None  # ACTIVE, CREATING, UPDATING, DELETING; None when unknown
    open_shards: int | None
    detail: str | None  # one line: why it did not answer, or what it answered instead
    seconds: float  # how long the check took


def stream_client(settings: Settings, timeout: float = 1.0):
    """A Kinesis client that gives up fast: one attempt, ``timeout`` to connect and to read."""
    return kinesis_client(settings, connect_timeout=timeout, read_timeout=timeout, retries=1)


def check_stream(client, settings: Settings) -> StreamStatus:
    """DescribeStreamSummary on the configured stream. Never raises: it is a status probe."""
    endpoint = settings.endpoint_url or f"AWS Kinesis ({settings.region})"
    name = settings.stream_name
    started = time.perf_counter()
    answers, status, shards, detail = False, None, None, None
    try:
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    except ClientError as exc:
        # The endpoint answered, with an error about the stream or our rights to it.
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        answers = True
        if code == "ResourceNotFoundException":
            detail = f"stream {name} does not exist yet; starting the stack creates it"
        else:
            detail = f"{code}: {_one_line(error.get('Message') or str(exc))}"
    except Exception as exc:  # noqa: BLE001 - unreachable, timed out, no credentials: all "down"
        detail = f"{type(exc).__name__}: {_one_line(str(exc))}"
    else:
        answers = True
        status = summary.get("StreamStatus")
        shards = summary.get("OpenShardCount")
        shards = None if shards is None else int(shards)
    return StreamStatus(
        stream_name=name,
        endpoint=endpoint,
        answers=answers,
        status=status,
        open_shards=shards,
        detail=detail,
        seconds=time.perf_counter() - started,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
