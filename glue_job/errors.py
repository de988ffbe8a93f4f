"""Errors (stream job): failures a user can act on, carried as one-line messages."""

from __future__ import annotations

import re

NO_SPACE = "No space left on device"
# Exception lines of a JVM or Python failure text ("pkg.Class: message", "ValueError: message"),
# less the wrappers that only say where the failure travelled through.
_EXCEPTION_LINE = re.compile(r"^(?:Caused by: )?([A-Za-z_][\w.$]*(?:Error|Exception)):? ?(.*)$")
_WRAPPERS = ("py4j.", "org.apache.spark.", "pyspark.", "java.util.concurrent.ExecutionException")
_WRITING = re.compile(r"writing rows to (file:\S+?|s3a?://\S+?)(?:\.|\s|$)")


class JobError(RuntimeError):
    """The stream job cannot start or stopped; the message says what to do."""


def root_cause(text: str) -> str:
    """The innermost failure in a stream job's error text, as one line of at most 300
    characters: the last exception line that is not a Spark or Py4J wrapper."""
    lines = [line.strip() for line in text.splitlines()]
    found = [
        (match.group(1), match.group(2))
        for match in map(_EXCEPTION_LINE.match, lines)
        if match and not match.group(1).startswith(_WRAPPERS)
    ]
    if found:
        name, message = found[-1]
        return f"{name}: {message}"[:300] if message else name
    return next((line[:300] for line in lines if line), "no details")


def disk_full_path(text: str) -> str | None:
    """Where a write ran out of space, when ``text`` says one did (None otherwise); the
    file's table directory when the text names the file."""
    if NO_SPACE not in text:
        return None
    match = _WRITING.search(text)
    if not match:
        return ""
    return match.group(1).removeprefix("file:").split("/_temporary/")[0]


def stream_failure(text: str, batch_id: int | None, lake_root: str) -> str:
    """The one line the stream job stops with, from its full error text."""
    batch = f"batch {batch_id}" if batch_id is not None else "the running batch"
    where = disk_full_path(text)
    if where is not None:
        return (
            f"stream job stopped: no space left on device writing {where or lake_root} "
            f"({batch}). Nothing of {batch} is visible and nothing is lost: free some space "
            f"and run `telcopulse stream` again, which resumes with {batch}"
        )
    return f"stream job failed in {batch}: {root_cause(text)}"
