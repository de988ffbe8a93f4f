"""Stream access (ingest layer): Kinesis clients and stream creation for both deployments."""

from __future__ import annotations

import time

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
