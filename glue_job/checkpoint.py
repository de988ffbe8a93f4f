"""Checkpoint checks (local stream job): a damaged Spark checkpoint is mended from the lake's
own commits, or refused with the repair named. Never a silent re-read from the start, and
never a skipped record.

Spark's checkpoint holds ``offsets/N`` (what batch N reads, written before it runs) and
``commits/N`` (written once ``foreachBatch`` returned). The job writes the lake's commit row
(``_ops``) inside ``foreachBatch``, so in a healthy checkpoint every ``commits/N`` is a batch
the lake committed, and at most one ``offsets/N`` (the next batch) is ahead of the lake.
On restart Spark reads the newest offsets file and the one before it, and the newest commit:
it runs the newest batch again when its commit is missing, and otherwise plans the next one.

What this module mends, given the lake's last committed batch C:

- commits of batches after C (the lake lost them, or the checkpoint is newer than the lake):
  Spark would not run those batches again, so their records would be skipped. Their commit
  files go, and so do the offsets of every batch after C + 1: Spark runs C + 1 again from its
  recorded offsets, and plans what the dropped batches held as new batches after it;
- an offsets or commit file that cannot be read (empty, truncated, not Spark's format) for a
  batch after C: it goes, with what follows it. Spark plans that batch again from C's end;
- a damaged commit file of a committed batch: it goes, with what follows it. Spark runs the
  batch again from its intact offsets, and the processor skips it as a replay.

What it refuses, naming the repair: no offsets at all over a lake with commits (Spark would
read the stream from the start), and a damaged offsets file Spark needs for a batch the lake
committed (C or the one before it): where the next batch starts is then unknown.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from glue_job.errors import JobError

_VERSION = re.compile(r"v\d+")
_REPAIR = "restore the checkpoint from a backup, or run `telcopulse reset` to start over"


def batch_files(directory: Path) -> dict[int, Path]:
    """A checkpoint log's files by batch id (Hadoop's ``.N.crc`` and temporary files aside)."""
    if not directory.is_dir():
        return {}
    return {int(p.name): p for p in directory.iterdir() if p.name.isdigit()}


def damage(path: Path) -> str | None:
    """Why Spark could not read this offsets or commit file, or None when it can: a version
    line, then one JSON document per line (``-`` for a source without an offset)."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        return f"unreadable ({exc.__class__.__name__})"
    if not _VERSION.fullmatch(lines[0]):
        return "no version line" if lines[0] else "empty"
    documents = [line for line in lines[1:] if line.strip()]
    if not documents:
        return "truncated after its version line"
    for line in documents:
        if line == "-":
            continue
        try:
            json.loads(line)
        except ValueError:
            return "truncated or corrupt JSON"
    return None


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(f".{path.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum


def mend_checkpoint(checkpoint: str | Path, last_committed: int | None) -> list[str]:
    """Check the checkpoint against the lake's last committed batch; mend what can be mended
    from the lake's commits and return one line per repair. Raises JobError otherwise."""
    root = Path(checkpoint)
    offsets, commits = batch_files(root / "offsets"), batch_files(root / "commits")
    committed = -1 if last_committed is None else last_committed
    if last_committed is not None and not offsets:
        raise JobError(
            f"the lake already holds committed batches (up to #{last_committed}) but the "
            f"checkpoint {root} has no offsets: {_REPAIR}"
        )
    repairs: list[str] = []

    def drop(kind: str, first: int, why: str) -> None:
        log = offsets if kind == "offsets" else commits
        gone = sorted(n for n in log if n >= first)
        for n in gone:
            _remove(log.pop(n))
        if gone:
            repairs.append(f"checkpoint: removed {kind} of batch {_span(gone)}: {why}")

    # Batches the lake never committed: Spark may only run the first of them again.
    drop("commits", committed + 1, f"the lake's last committed batch is #{committed}")
    drop("offsets", committed + 2, f"batch #{committed + 1} runs again, then new ones")
    # Spark reads the newest commit file: a damaged one goes, newest first.
    while commits and (why := damage(commits[newest := max(commits)])) is not None:
        drop("commits", newest, f"it was damaged ({why})")
    # Spark reads the newest offsets file and the one before it. A damaged one of a batch
    # the lake has not committed goes (with its commit): Spark plans that batch again.
    while offsets and max(offsets) > committed:
        newest = max(offsets)
        if (why := damage(offsets[newest])) is None:
            break
        drop("offsets", newest, f"it was damaged ({why})")
        drop("commits", newest, f"offsets of batch #{newest} were damaged")
    for n in sorted(offsets)[-2:]:
        if (why := damage(offsets[n])) is not None:
            raise JobError(
                f"checkpoint file {offsets[n]} is damaged ({why}) and the lake already "
                f"committed batch #{n}, so where the next batch starts is unknown: {_REPAIR}"
            )
    return repairs


def _span(ids: list[int]) -> str:
    return f"#{ids[0]}" if len(ids) == 1 else f"#{ids[0]}-#{ids[-1]}"
