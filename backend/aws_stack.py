"""The deployed AWS stack, read only (operations, AWS deployment): its outputs and job runs.

What ``telcopulse status`` asks of CloudFormation (the stack, whose outputs name the
stream job) and of Glue (the stream job's runs). Nothing here changes AWS: the deploy
tooling (``telcopulse_deploy``) builds on these to create, update, start and stop, and
the runtime never imports it. Clients come from the caller (boto3, or moto in tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

# Glue job run states (GetJobRun's JobRunState). A streaming run stays RUNNING until stopped;
# one that ended in any way is not processing the stream.
ACTIVE_RUN_STATES = ("STARTING", "RUNNING", "WAITING")
ENDED_RUN_STATES = ("STOPPED", "SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "EXPIRED")


def describe_stack(cf, name: str) -> dict | None:
    """The stack as DescribeStacks returns it; None when there is no such stack."""
    from botocore.exceptions import ClientError

    try:
        return cf.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def stack_outputs(stack: Mapping) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


@dataclass(frozen=True)
class JobRun:
    """One run of the Glue stream job, as GetJobRun(s) describes it."""

    job: str
    run_id: str
    state: str
    started_on: datetime | None = None
    error: str = ""  # ErrorMessage of a run that failed
    note: str = ""  # what deploy did about it (started, restarted, left running...)

    @classmethod
    def from_api(cls, job: str, run: Mapping) -> JobRun:
        return cls(
            job=job,
            run_id=run["Id"],
            state=run["JobRunState"],
            started_on=run.get("StartedOn"),
            error=" ".join(str(run.get("ErrorMessage") or "").split())[:300],
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_RUN_STATES

    @property
    def ended(self) -> bool:
        return self.state in ENDED_RUN_STATES


def job_runs(glue, job: str) -> list[JobRun]:
    """The job's runs, newest first (one page: a stream job has few runs at a time)."""
    runs = [JobRun.from_api(job, r) for r in glue.get_job_runs(JobName=job)["JobRuns"]]
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(runs, key=lambda r: r.started_on or oldest, reverse=True)
