"""glue_job.checkpoint: a damaged checkpoint is mended from the lake's commits, or refused.

Each case lays out a checkpoint as Spark writes it (``offsets/N``, ``commits/N`` and their
Hadoop ``.N.crc`` files), damages it, and checks what is left: the files Spark reads on
restart decide which batch runs next, so the assertions are on those files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glue_job.checkpoint import batch_files, damage, mend_checkpoint
from glue_job.errors import JobError

OFFSETS = (
    'v1\n{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":{}}\n{"shardId-000000000000": "%d"}'
)
COMMIT = 'v1\n{"nextBatchWatermarkMs":0}'


def checkpoint(root: Path, offsets: int, commits: int) -> Path:
    """Offsets of batches 0..offsets-1 and commits of 0..commits-1, with checksum files."""
    for kind, count, text in (("offsets", offsets, OFFSETS), ("commits", commits, COMMIT)):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            (root / kind / str(n)).write_text(text % (100 * n) if "%d" in text else text)
            (root / kind / f".{n}.crc").write_bytes(b"crc")
    return root


def left(root: Path) -> tuple[list[int], list[int]]:
    return sorted(batch_files(root / "offsets")), sorted(batch_files(root / "commits"))


def test_a_healthy_checkpoint_is_left_alone(tmp_path) -> None:
    root = checkpoint(tmp_path, offsets=6, commits=5)  # batch 5 planned, not yet committed
    assert mend_checkpoint(root, 4) == []
    assert left(root) == ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4])


def test_a_fresh_start_needs_nothing(tmp_path) -> None:
    assert mend_checkpoint(tmp_path / "none", None) == []


def test_no_offsets_over_a_committed_lake_is_refused_with_the_repair(tmp_path) -> None:
    with pytest.raises(JobError, match=r"up to #3.*no offsets.*telcopulse reset"):
        mend_checkpoint(tmp_path / "gone", 3)


def test_commits_ahead_of_the_lake_run_those_batches_again(tmp_path) -> None:
    # Spark says batches 0-7 are done, the lake has only 0-4: without the repair Spark would
    # plan batch 8 and the records of 5-7 would never reach the lake.
    root = checkpoint(tmp_path, offsets=8, commits=8)
    repairs = mend_checkpoint(root, 4)
    assert left(root) == ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4])  # Spark runs batch 5 again
    assert not (root / "commits" / ".7.crc").exists()
    assert repairs == [
        "checkpoint: removed commits of batch #5-#7: the lake's last committed batch is #4",
        "checkpoint: removed offsets of batch #6-#7: batch #5 runs again, then new ones",
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("v1\n", "truncated after its version line"),
        ('v1\n{"batchWatermarkMs":0,"batch', "truncated or corrupt JSON"),
        ("\x00\x00\x00", "no version line"),
    ],
)
def test_a_damaged_offsets_file_of_an_uncommitted_batch_is_planned_again(
    tmp_path, text, why
) -> None:
    root = checkpoint(tmp_path, offsets=6, commits=5)
    (root / "offsets" / "5").write_text(text)
    assert damage(root / "offsets" / "5") == why
    assert mend_checkpoint(root, 4) == [
        f"checkpoint: removed offsets of batch #5: it was damaged ({why})"
    ]
    assert left(root) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])  # Spark plans 5 from 4's end


def test_a_damaged_newest_commit_runs_its_batch_again_as_a_replay(tmp_path) -> None:
    root = checkpoint(tmp_path, offsets=5, commits=5)
    (root / "commits" / "4").write_text("v1\n")
    assert mend_checkpoint(root, 4) == [
        "checkpoint: removed commits of batch #4: it was damaged (truncated after its version line)"
    ]
    # Batch 4 runs again from its intact offsets; the lake has it, so the job skips it.
    assert left(root) == ([0, 1, 2, 3, 4], [0, 1, 2, 3])


@pytest.mark.parametrize("batch", [3, 4])
def test_damaged_offsets_of_a_committed_batch_that_spark_reads_are_refused(tmp_path, batch) -> None:
    root = checkpoint(tmp_path, offsets=5, commits=5)
    (root / "offsets" / str(batch)).write_text('v1\n{"batch')
    with pytest.raises(
        JobError, match=rf"offsets/{batch} is damaged .*committed batch #{batch}.*reset"
    ):
        mend_checkpoint(root, 4)
    assert left(root) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])  # nothing touched


def test_damaged_offsets_of_an_old_batch_are_left_alone(tmp_path) -> None:
    root = checkpoint(tmp_path, offsets=6, commits=5)
    (root / "offsets" / "1").write_text("")
    assert mend_checkpoint(root, 4) == []  # Spark reads only batches 4 and 5's offsets


def test_the_offsets_format_is_sparks(tmp_path) -> None:
    root = checkpoint(tmp_path, offsets=1, commits=1)
    assert damage(root / "offsets" / "0") is None
    assert damage(root / "commits" / "0") is None
    assert json.loads((root / "offsets" / "0").read_text().split("\n")[2])
