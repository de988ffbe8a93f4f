"""Deploy (AWS deployment tooling): ``telcopulse deploy`` and ``telcopulse destroy``.

Tooling, not runtime: the CLI imports this only for those two commands, and nothing in
``backend`` or ``glue_job`` imports it (what ``telcopulse status`` reads of a deployed
stack is ``backend.aws_stack``). What it reads: the CloudFormation templates as installed
package data (``find_template``) or from a path the command gives; the Glue script from
the installed ``glue_job`` package; and, to build the ``glue_job`` wheel and the dashboard
image, the checkout that package is installed from (``checkout_file``). One module of
about 900 lines because it is one ordered procedure, below.

Ordering, and why. The stack creates its own artifacts bucket and image repository, and
``infra/telcopulse.yaml`` is larger than the 51,200 bytes CloudFormation accepts inline, so
nothing can be uploaded before some stack exists. ``deploy`` therefore runs:

1. Local builds first, so a broken build touches no AWS resource: the glue_job wheel
   (``pip wheel --no-deps``, only the ``glue_job`` package: Glue provides pyspark and boto3)
   and, when a Docker engine answers, the dashboard image (tagged by its image id).
2. A small bootstrap stack, ``<stack>-bootstrap`` from ``infra/bootstrap.yaml``: one private
   bucket where the main template is staged (the pattern of CDK's bootstrap stack). It is
   created once and is a no-op afterwards.
3. The main stack, created or updated through a change set from the staged template. The
   Glue job only points at ``GlueScriptKey`` and ``GlueWheelKey``; nothing runs until a job
   run starts, so the job may exist a minute before its code does.
4. The entry script and wheel go to the stack's artifacts bucket at those keys (skipped when
   the object there already has the same SHA-256).
5. The image is pushed to the stack's repository and a second change set sets ``ImageTag``,
   which takes the dashboard service from 0 tasks to ``DashboardDesiredCount``.
6. The stream job (stack output ``GlueJobName``): a run starts when none is going; a run
   going on code older than this deploy's (a new script or wheel was uploaded, or the stack
   changed the job's definition since the run started) is stopped and a new one started,
   which resumes from its checkpoint; otherwise the run is left alone. ``deploy`` then waits,
   a bounded time, for the run to be RUNNING or to fail, and fails with one line if it did.
A re-run with nothing changed creates no change set, uploads nothing and starts no run.
Parameters given once (``--vpc-id``, ``--parameter StreamMode=PROVISIONED``...) keep their
value on later deploys, as with ``aws cloudformation deploy``.

``destroy`` first clears what would block the deletion: it stops the stream job's run (and
waits for STOPPED, bounded, so nothing writes to the lake any more) and detaches the stack's
``ProducerPolicy`` from every user, group and role outside the stack it was attached to (IAM
refuses to delete an attached policy). Then it empties every bucket the two stacks own
(CloudFormation refuses to delete a bucket that holds objects), and deletes the main stack and
the bootstrap stack.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import glue_job
from backend.aws_stack import JobRun, describe_stack, job_runs, stack_outputs
from backend.catalog import current_views
from backend.settings import ENV_PREFIX, Settings

# The CloudFormation templates: infra/*.yaml, installed as this package's data (the package
# ``telcopulse_deploy.infra``, see pyproject.toml), unless a command names another file.
TEMPLATES_PACKAGE = "telcopulse_deploy.infra"
MAIN_TEMPLATE = "telcopulse.yaml"
BOOTSTRAP_TEMPLATE = "bootstrap.yaml"
TEMPLATE_OPTIONS = {MAIN_TEMPLATE: "--template", BOOTSTRAP_TEMPLATE: "--bootstrap-template"}
# The Glue job's script: the entry module of the installed glue_job package.
GLUE_JOB_DIR = Path(glue_job.__file__).resolve().parent
ENTRY_SCRIPT = GLUE_JOB_DIR / "glue_entry.py"
SCRIPT_KEY = "glue/telcopulse_glue_entry.py"
WHEEL_DISTRIBUTION = "telcopulse-glue-job"
IMAGE_NAME = "telcopulse-dashboard"
# Zip entries dated 1980-01-01, so an unchanged glue_job/ builds a byte-identical wheel.
REPRODUCIBLE_EPOCH = "315532800"

# Template parameters with an option of their own (the ones a first deploy must give).
PARAMETER_OPTIONS = {
    "VpcId": "--vpc-id",
    "AlbSubnetIds": "--alb-subnets",
    "ServiceSubnetIds": "--service-subnets",
    "AllowedIngressCidr": "--allowed-cidr",
    "CertificateArn": "--certificate-arn",
}
# Settings that aws mode reads, by the stack output that carries each.
OUTPUT_SETTINGS = {
    "stream_name": "StreamName",
    "lake_uri": "LakeUri",
    "athena_workgroup": "AthenaWorkGroupName",
    "athena_database": "GlueDatabaseName",
    "athena_output": "AthenaOutputLocation",
}
PLATFORMS = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
# A stack in one of these cannot take a change set; the message says what to do.
BLOCKED = {
    "ROLLBACK_COMPLETE": "its first creation failed and rolled back: run `telcopulse destroy "
    "--yes`, fix the cause shown in the CloudFormation console, then deploy again",
    "ROLLBACK_FAILED": "it could not roll back: delete it in the CloudFormation console",
    "DELETE_FAILED": "its deletion failed: run `telcopulse destroy --yes` again",
    "UPDATE_ROLLBACK_FAILED": "an update could not roll back: continue the rollback in the "
    "CloudFormation console",
}
Log = Callable[[str], None]

# Glue 5 streaming runs take one to a few minutes to reach RUNNING (workers, then the pip
# install of the wheel); stopping one ends the current micro-batch first.
JOB_START_TIMEOUT = 600.0
JOB_STOP_TIMEOUT = 300.0
JOB_POLL_SECONDS = 10.0
# An error about the job's Glue version ("GlueVersion", "Glue version 5.0 is not supported").
GLUE_VERSION_MENTIONED = re.compile(r"glue\s*version", re.IGNORECASE)
GLUE_VERSION_ADVICE = "deploy again with `--parameter GlueVersion=5.1` (see docs/aws.md)"


class DeployError(RuntimeError):
    """Deploying or destroying cannot go on; the message says what to do."""


@dataclass
class DeployResult:
    stack: str  # created, updated or unchanged
    uploaded: list[str] = field(default_factory=list)
    image: str | None = None  # the image this run built, if it built one
    image_tag: str = ""  # the tag the dashboard runs after this run ("" = none yet)
    outputs: dict[str, str] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)  # catalog views (re)created in Athena
    job_run: JobRun | None = None  # the stream job's run after this deploy

    @property
    def changed(self) -> bool:
        return self.stack != "unchanged" or bool(self.uploaded)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- what deploy reads ----------------------------------------------------------------------


def find_template(name: str, given: Path | None = None) -> Path:
    """The template ``name`` (MAIN_TEMPLATE or BOOTSTRAP_TEMPLATE) to deploy: ``given`` when
    a command names a file, else the installed copy of ``infra/<name>``."""
    if given is not None:
        if not given.is_file():
            raise DeployError(
                f"no template at {given}: give {TEMPLATE_OPTIONS[name]} an existing file"
            )
        return given
    try:
        installed = resources.files(TEMPLATES_PACKAGE) / name
    except ModuleNotFoundError:
        installed = None
    if installed is None or not installed.is_file():
        raise DeployError(
            f"infra/{name} is not installed with the deploy tooling: reinstall TelcoPulse "
            f"(pip install -e . in its checkout) or give the template with "
            f"{TEMPLATE_OPTIONS[name]} PATH"
        )
    return Path(str(installed))


def checkout_file(name: str) -> Path:
    """A file of the TelcoPulse checkout beside the installed glue_job package: the glue_job
    wheel (pyproject.toml) and the dashboard image (Dockerfile) are built from source."""
    path = GLUE_JOB_DIR.parent / name
    if not path.is_file():
        raise DeployError(
            f"deploy builds the Glue wheel and the dashboard image from a TelcoPulse checkout, "
            f"and {path.parent} has no {name}: run it where TelcoPulse is installed from one "
            "(pip install -e .)"
        )
    return path


# -- local builds ---------------------------------------------------------------------------


def build_glue_wheel(out_dir: Path) -> Path:
    """The glue_job package alone as a wheel (no dependencies: Glue provides them)."""
    project = tomllib.loads(checkout_file("pyproject.toml").read_text())
    source = out_dir / "source"
    shutil.copytree(
        GLUE_JOB_DIR,
        source / "glue_job",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    # A pyproject of its own, from the project's: same build backend, version and Python.
    values = {
        "requires": project["build-system"]["requires"],
        "build-backend": project["build-system"]["build-backend"],
        "name": WHEEL_DISTRIBUTION,
        "version": project["project"]["version"],
        "requires-python": project["project"]["requires-python"],
        "package-data": project["tool"]["setuptools"]["package-data"]["glue_job"],
    }
    toml = {key: json.dumps(value) for key, value in values.items()}  # JSON strings are TOML
    (source / "pyproject.toml").write_text(
        f"[build-system]\nrequires = {toml['requires']}\nbuild-backend = {toml['build-backend']}\n"
        f"[project]\nname = {toml['name']}\nversion = {toml['version']}\n"
        f"requires-python = {toml['requires-python']}\n"
        '[tool.setuptools]\npackages = ["glue_job"]\n'
        f"[tool.setuptools.package-data]\nglue_job = {toml['package-data']}\n"
    )
    wheels = out_dir / "wheel"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
    result = subprocess.run(
        [*command, "--wheel-dir", str(wheels), str(source)],
        env={**os.environ, "SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH},
        capture_output=True,
        text=True,
        check=False,
    )
    built = sorted(wheels.glob("*.whl"))
    if result.returncode != 0 or len(built) != 1:
        detail = (result.stderr.strip().splitlines() or ["no wheel was written"])[-1]
        raise DeployError(f"building the glue_job wheel failed: {detail}")
    return built[0]


def docker_engine() -> str | None:
    """The docker CLI when it can reach an engine, else None."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        probe = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return docker if probe.returncode == 0 else None


def _docker(docker: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [docker, *args], input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DeployError(f"`docker {args[0]}` failed: {detail}")
    return result.stdout.strip()


def build_image(docker: str, platform: str) -> str:
    """Build the dashboard image; its tag is the start of its image id (same build, same tag)."""
    local = f"{IMAGE_NAME}:deploy"
    context = checkout_file("Dockerfile").parent
    _docker(docker, "build", "--platform", platform, "--tag", local, str(context))
    image_id = _docker(docker, "image", "inspect", "--format", "{{.Id}}", local)
    return image_id.removeprefix("sha256:")[:12]


def push_image(docker: str, ecr, repository_uri: str, tag: str, log: Log) -> bool:
    """Push ``<repository_uri>:<tag>`` unless the repository already has that tag."""
    registry, repository = repository_uri.split("/", 1)
    found = ecr.describe_images(repositoryName=repository, filter={"tagStatus": "TAGGED"}).get(
        "imageDetails", []
    )
    if any(tag in image.get("imageTags", []) for image in found):
        return False
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, password = base64.b64decode(token).decode().split(":", 1)
    _docker(docker, "login", "--username", user, "--password-stdin", registry, stdin=password)
    _docker(docker, "tag", f"{IMAGE_NAME}:deploy", f"{repository_uri}:{tag}")
    log(f"pushing the dashboard image {repository_uri}:{tag}")
    _docker(docker, "push", f"{repository_uri}:{tag}")
    return True


# -- stacks ---------------------------------------------------------------------------------


def required_output(outputs: Mapping[str, str], key: str, stack: str) -> str:
    if key not in outputs:
        raise DeployError(
            f"stack {stack} has no output {key}: is it TelcoPulse's? (its outputs: "
            f"{', '.join(sorted(outputs)) or 'none'})"
        )
    return outputs[key]


def ensure_stack(
    cf,
    name: str,
    *,
    body: str,
    parameters: Mapping[str, str],
    template_url: str | None = None,
    log: Log = _stderr,
) -> str:
    """Create or update ``name`` through a change set; return created, updated or unchanged.

    ``parameters`` are explicit values; every other parameter the stack already has keeps
    its value (UsePreviousValue), and a new one takes its template default.
    """
    template = {"TemplateURL": template_url} if template_url else {"TemplateBody": body}
    summary = cf.get_template_summary(**template)
    declared = {p["ParameterKey"]: p for p in summary.get("Parameters", [])}
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise DeployError(
            f"{', '.join(unknown)}: not a parameter of the template; it has "
            + ", ".join(sorted(declared))
        )
    existing = describe_stack(cf, name)
    status = existing["StackStatus"] if existing else None
    if status in BLOCKED:
        raise DeployError(f"stack {name} is {status}: {BLOCKED[status]}")
    if status and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise DeployError(f"stack {name} is busy ({status}): wait for it to finish, then retry")
    creating = existing is None or status == "REVIEW_IN_PROGRESS"
    previous = {} if creating else {p["ParameterKey"]: p for p in existing["Parameters"]}

    missing = [
        key
        for key, p in declared.items()
        if p.get("DefaultValue") is None and key not in parameters and key not in previous
    ]
    if missing:
        needed = [PARAMETER_OPTIONS.get(k, f"--parameter {k}=VALUE") for k in missing]
        raise DeployError(f"the first deploy of {name} needs {', '.join(needed)}")

    if not creating and _unchanged(cf, name, body, parameters, previous):
        return "unchanged"
    entries = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    entries += [
        {"ParameterKey": k, "UsePreviousValue": True}
        for k in previous
        if k in declared and k not in parameters
    ]
    change_set = f"telcopulse-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"
    log(f"{'creating' if creating else 'updating'} stack {name} (change set {change_set})")
    created = cf.create_change_set(
        StackName=name,
        ChangeSetName=change_set,
        ChangeSetType="CREATE" if creating else "UPDATE",
        Parameters=entries,
        Capabilities=summary.get("Capabilities", []),
        Description="telcopulse deploy",
        **template,
    )
    described = _wait_for_change_set(cf, created["Id"])
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        if any(text in reason for text in NO_CHANGES):
            cf.delete_change_set(ChangeSetName=created["Id"])
            return "unchanged"
        raise DeployError(f"CloudFormation rejected the change set for {name}: {reason}")
    cf.execute_change_set(ChangeSetName=created["Id"])
    _wait_for_stack(cf, name, "stack_create_complete" if creating else "stack_update_complete")
    return "created" if creating else "updated"


def _unchanged(cf, name: str, body: str, parameters: Mapping[str, str], previous) -> bool:
    """Same template text and no explicit value differing from the stack's: nothing to do."""
    deployed = cf.get_template(StackName=name, TemplateStage="Original")["TemplateBody"]
    if not isinstance(deployed, str) or deployed != body:
        return False
    return all(
        key in previous and previous[key].get("ParameterValue") == value
        for key, value in parameters.items()
    )


def _wait_for_change_set(cf, change_set_id: str) -> dict:
    from botocore.exceptions import WaiterError

    with suppress(WaiterError):  # a FAILED change set ends the waiter too; its status says why
        cf.get_waiter("change_set_create_complete").wait(
            ChangeSetName=change_set_id, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
        )
    return cf.describe_change_set(ChangeSetName=change_set_id)


def _wait_for_stack(cf, name: str, waiter: str) -> None:
    from botocore.exceptions import WaiterError

    try:
        cf.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 10, "MaxAttempts": 360})
    except WaiterError:
        event = _first_failed_event(cf, name)
        message = f"stack {name} failed: {_failure_text(event)}"
        if event and _refuses_glue_version(event):
            first = (
                "run `telcopulse destroy --yes`, then " if waiter == "stack_create_complete" else ""
            )
            message += f"; Glue refuses the job's Glue version here: {first}{GLUE_VERSION_ADVICE}"
        raise DeployError(message) from None


def _first_failed_event(cf, name: str) -> dict | None:
    try:
        events = cf.describe_stack_events(StackName=name)["StackEvents"]
    except Exception:  # noqa: BLE001 - the stack may already be gone
        return None
    for event in reversed(events):  # oldest first: the first failure is the cause
        if event["ResourceStatus"].endswith("_FAILED") and event.get("ResourceStatusReason"):
            return event
    return None


def _failure_text(event: Mapping | None) -> str:
    if event is None:
        return "see the stack's events in the CloudFormation console"
    return f"{event['LogicalResourceId']}: {event['ResourceStatusReason']}"


def _refuses_glue_version(event: Mapping) -> bool:
    """A failure over the Glue version: one that names it, or the Glue job's creation or
    update refused as "not supported" (what CreateJob says of a version it does not offer)."""
    reason = event.get("ResourceStatusReason", "")
    if GLUE_VERSION_MENTIONED.search(reason):
        return True
    return event.get("ResourceType") == "AWS::Glue::Job" and "not supported" in reason.lower()


# -- catalog views --------------------------------------------------------------------------


def create_views(
    athena, *, workgroup: str, database: str, log: Log, timeout: float = 300
) -> list[str]:
    """Create or replace, in Athena, the views that keep only current rows of compacted tables
    (``backend.catalog``): the same SQL the local DuckDB engine runs. Idempotent."""
    created = []
    for name, sql in current_views().items():
        started = athena.start_query_execution(
            QueryString=sql, QueryExecutionContext={"Database": database}, WorkGroup=workgroup
        )
        query_id = started["QueryExecutionId"]
        deadline = time.monotonic() + timeout
        while True:
            status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            state = status["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in {"FAILED", "CANCELLED"} or time.monotonic() > deadline:
                reason = status["Status"].get("StateChangeReason") or state.lower()
                raise DeployError(f"creating the Athena view {name} failed: {reason}")
            time.sleep(1)
        created.append(name)
    log(f"catalog views in {database}: {', '.join(created)}")
    return created


# -- artifacts ------------------------------------------------------------------------------


def upload_artifact(s3, bucket: str, key: str, path: Path) -> bool:
    """Upload ``path`` to ``s3://bucket/key`` unless that object has the same SHA-256."""
    from botocore.exceptions import ClientError

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == digest:
            return False
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"404", "NoSuchKey", "NotFound"}:
            raise
    s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": digest}})
    return True


def stage_template(s3, bucket: str, region: str, body: str) -> str:
    """Put the main template where CloudFormation can read it; return its URL."""
    digest = hashlib.sha256(body.encode()).hexdigest()
    key = f"templates/telcopulse-{digest[:16]}.yaml"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="text/yaml")
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


# -- stream job -----------------------------------------------------------------------------


def wait_for_run(
    glue,
    job: str,
    run_id: str,
    *,
    done: Callable[[JobRun], bool],
    timeout: float,
    poll: float,
) -> JobRun:
    """Poll GetJobRun until ``done`` holds or ``timeout`` passes; return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        run = JobRun.from_api(job, glue.get_job_run(JobName=job, RunId=run_id)["JobRun"])
        if done(run) or time.monotonic() >= deadline:
            return run
        time.sleep(poll)


def ensure_job_run(
    glue,
    job: str,
    *,
    new_code: bool,
    log: Log = _stderr,
    timeout: float = JOB_START_TIMEOUT,
    poll: float = JOB_POLL_SECONDS,
) -> JobRun:
    """Make sure the stream job runs this deploy's code; see the module docstring (step 6).

    Returns the run, RUNNING or, when ``timeout`` passed first, still starting; raises a
    DeployError when it ended instead.
    """
    runs = job_runs(glue, job)
    going = next((r for r in runs if r.active), None)
    why = "a new script or wheel was uploaded" if new_code else ""
    if going is not None and not why and _redefined_since(glue, job, going):
        why = "the stack changed the job's definition"
    if going is not None and not why:
        log(f"stream job {job}: run {going.run_id} is {going.state}; nothing changed, left alone")
        run, note = going, "left running: nothing changed"
    else:
        stopping = [r for r in runs if r.state == "STOPPING"]
        if going is not None:
            log(
                f"stream job {job}: {why}: a new run replaces run {going.run_id} and resumes "
                "from its checkpoint"
            )
        if going is not None or stopping:  # one run at a time: they share the checkpoint
            others = [going] if going is not None else []
            stop_job_runs(glue, job, others + stopping, log=log, poll=poll)
        run = JobRun(job, _start_job_run(glue, job), "STARTING")
        note = f"restarted: {why}" if going is not None else "started"
        log(f"stream job {job}: started run {run.run_id}; waiting up to {timeout:g}s for RUNNING")
    if run.state != "RUNNING":
        run = wait_for_run(
            glue,
            job,
            run.run_id,
            done=lambda r: r.state == "RUNNING" or not r.active,
            timeout=timeout,
            poll=poll,
        )
        log(f"stream job {job}: run {run.run_id} is {run.state}")
    if not run.active:
        raise DeployError(_ended_message(run))
    if run.state != "RUNNING":
        note += f"; still {run.state} after {timeout:g}s"
    return replace(run, note=note)


def _redefined_since(glue, job: str, run: JobRun) -> bool:
    """Whether the job's definition changed after ``run`` started (a run keeps the one it
    started with: a stack update of the job's arguments reaches only later runs)."""
    modified = glue.get_job(JobName=job)["Job"].get("LastModifiedOn")
    return bool(modified and run.started_on and modified > run.started_on)


def _start_job_run(glue, job: str) -> str:
    from botocore.exceptions import ClientError

    try:
        return glue.start_job_run(JobName=job)["JobRunId"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        reason = " ".join(str(error.get("Message") or exc).split())[:300]
        message = f"starting the stream job {job} failed: {error.get('Code', 'error')}: {reason}"
        if GLUE_VERSION_MENTIONED.search(reason):
            message += f"; Glue refuses the job's Glue version here: {GLUE_VERSION_ADVICE}"
        raise DeployError(message) from None


def _ended_message(run: JobRun) -> str:
    message = f"the stream job {run.job} run {run.run_id} {run.state}"
    if run.error:
        message += f": {run.error}"
        if GLUE_VERSION_MENTIONED.search(run.error):
            message += f"; Glue refuses the job's Glue version here: {GLUE_VERSION_ADVICE}"
    elif run.state == "SUCCEEDED":
        message += " (a streaming run should keep running until it is stopped)"
    return message + f"; details: aws glue get-job-run --job-name {run.job} --run-id {run.run_id}"


def stop_job_runs(
    glue,
    job: str,
    runs: list[JobRun],
    *,
    log: Log = _stderr,
    timeout: float = JOB_STOP_TIMEOUT,
    poll: float = JOB_POLL_SECONDS,
) -> list[JobRun]:
    """BatchStopJobRun on ``runs`` (those not already stopping) and wait until each ended."""
    from botocore.exceptions import ClientError

    to_stop = [r.run_id for r in runs if r.state != "STOPPING"]
    refused: dict[str, str] = {}
    for run in runs:
        log(f"stream job {job}: stopping run {run.run_id}")
    if to_stop:
        try:
            answer = glue.batch_stop_job_run(JobName=job, JobRunIds=to_stop)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            reason = " ".join(str(error.get("Message") or exc).split())[:200]
            raise DeployError(
                f"stopping the stream job {job} failed ({error.get('Code', 'error')}: {reason}): "
                f"stop it (aws glue batch-stop-job-run --job-name {job} --job-run-ids "
                f"{' '.join(to_stop)}), then retry"
            ) from None
        for error in answer.get("Errors", []):
            detail = error.get("ErrorDetail", {})
            refused[error["JobRunId"]] = f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
    stopped = []
    for run in runs:
        final = wait_for_run(
            glue, job, run.run_id, done=lambda r: r.ended, timeout=timeout, poll=poll
        )
        if not final.ended:
            why = f" (BatchStopJobRun: {refused[run.run_id]})" if run.run_id in refused else ""
            raise DeployError(
                f"the stream job {job} run {run.run_id} is still {final.state} after "
                f"{timeout:g}s{why}: stop it (aws glue batch-stop-job-run --job-name {job} "
                f"--job-run-ids {run.run_id}) and retry once it has stopped"
            )
        log(f"stream job {job}: run {run.run_id} is {final.state}")
        stopped.append(final)
    return stopped


def stop_stream_job(
    glue,
    job: str,
    *,
    log: Log = _stderr,
    timeout: float = JOB_STOP_TIMEOUT,
    poll: float = JOB_POLL_SECONDS,
) -> list[JobRun]:
    """Stop every run of ``job`` that is going; nothing when the job does not exist."""
    from botocore.exceptions import ClientError

    try:
        runs = job_runs(glue, job)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "EntityNotFoundException":
            return []
        raise
    going = [r for r in runs if r.active or r.state == "STOPPING"]
    return stop_job_runs(glue, job, going, log=log, timeout=timeout, poll=poll) if going else []


# -- producer policy ------------------------------------------------------------------------

# ListEntitiesForPolicy's key, the name's key, the kind, and IAM's detach action.
POLICY_ENTITIES = (
    ("PolicyUsers", "UserName", "user", "detach_user_policy"),
    ("PolicyGroups", "GroupName", "group", "detach_group_policy"),
    ("PolicyRoles", "RoleName", "role", "detach_role_policy"),
)


def detach_producer_policy(iam, policy_arn: str, *, log: Log = _stderr) -> list[str]:
    """Detach the stack's ProducerPolicy from everyone it was attached to (IAM refuses to
    delete an attached policy, and so CloudFormation the stack); return "user alice"..."""
    from botocore.exceptions import ClientError

    detached = []
    # Every page first: detaching while paging would move the markers under our feet.
    pages = list(iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=policy_arn))
    for page in pages:
        for key, name_key, kind, action in POLICY_ENTITIES:
            for entity in page.get(key, []):
                name = entity[name_key]
                try:
                    getattr(iam, action)(**{name_key: name, "PolicyArn": policy_arn})
                except ClientError as exc:
                    code = exc.response["Error"]["Code"]
                    command = f"aws iam {action.replace('_', '-')} --{kind}-name {name}"
                    raise DeployError(
                        f"cannot detach the producer policy from {kind} {name} ({code}): run "
                        f"`{command} --policy-arn {policy_arn}` as someone allowed to, then "
                        "`telcopulse destroy --yes` again"
                    ) from None
                log(f"detached the producer policy from {kind} {name}")
                detached.append(f"{kind} {name}")
    return detached


# -- commands -------------------------------------------------------------------------------


def bootstrap_name(settings: Settings) -> str:
    return f"{settings.stack_name}-bootstrap"


def deploy(
    settings: Settings,
    *,
    parameters: Mapping[str, str] | None = None,
    template: Path | None = None,
    bootstrap_template: Path | None = None,
    with_image: bool = True,
    job_timeout: float = JOB_START_TIMEOUT,
    job_poll: float = JOB_POLL_SECONDS,
    log: Log = _stderr,
    session=None,
) -> DeployResult:
    """Build, stage and deploy everything; see the module docstring for the order.

    ``template`` and ``bootstrap_template`` default to the installed infra/ templates.
    """
    import boto3

    body = find_template(MAIN_TEMPLATE, template).read_text(encoding="utf-8")
    bootstrap_body = find_template(BOOTSTRAP_TEMPLATE, bootstrap_template).read_text(
        encoding="utf-8"
    )
    session = session or boto3.session.Session(region_name=settings.region)
    cf = session.client("cloudformation")
    s3 = session.client("s3")
    explicit = {"ProjectName": settings.project_name, **(parameters or {})}

    with tempfile.TemporaryDirectory(prefix="telcopulse-deploy-") as scratch:
        wheel = build_glue_wheel(Path(scratch))
        explicit |= {"GlueScriptKey": SCRIPT_KEY, "GlueWheelKey": f"glue/{wheel.name}"}
        log(f"built {wheel.name}")

        docker = docker_engine() if with_image else None
        tag = None
        if docker:
            existing = describe_stack(cf, settings.stack_name)
            previous = {
                p["ParameterKey"]: p["ParameterValue"]
                for p in (existing or {}).get("Parameters", [])
            }
            arch = explicit.get(
                "DashboardCpuArchitecture", previous.get("DashboardCpuArchitecture", "X86_64")
            )
            log(f"building the dashboard image for {PLATFORMS[arch]}")
            tag = build_image(docker, PLATFORMS[arch])
        elif with_image:
            log(
                "skipped the dashboard image: no Docker engine answers here (start Docker and "
                "run `telcopulse deploy` again; the dashboard runs no task until one is pushed)"
            )

        ensure_stack(cf, bootstrap_name(settings), body=bootstrap_body, parameters={}, log=log)
        staging = stack_outputs(describe_stack(cf, bootstrap_name(settings)))
        staging_bucket = required_output(staging, "TemplateBucketName", bootstrap_name(settings))
        url = stage_template(s3, staging_bucket, settings.region, body)

        result = DeployResult(
            stack=ensure_stack(
                cf, settings.stack_name, body=body, parameters=explicit, template_url=url, log=log
            )
        )
        outputs = stack_outputs(describe_stack(cf, settings.stack_name))
        bucket = required_output(outputs, "ArtifactsBucketName", settings.stack_name)
        for path, key in ((ENTRY_SCRIPT, SCRIPT_KEY), (wheel, explicit["GlueWheelKey"])):
            if upload_artifact(s3, bucket, key, path):
                log(f"uploaded s3://{bucket}/{key}")
                result.uploaded.append(key)

        if {"AthenaWorkGroupName", "GlueDatabaseName"} <= set(outputs):
            result.views = create_views(
                session.client("athena"),
                workgroup=outputs["AthenaWorkGroupName"],
                database=outputs["GlueDatabaseName"],
                log=log,
            )
        else:
            log("warning: the stack has no Athena workgroup or Glue database output: no views")

        if docker and tag:
            pushed = push_image(
                docker, session.client("ecr"), outputs["EcrRepositoryUri"], tag, log
            )
            with_tag = ensure_stack(
                cf,
                settings.stack_name,
                body=body,
                parameters={**explicit, "ImageTag": tag},
                template_url=url,
                log=log,
            )
            if with_tag != "unchanged" and result.stack == "unchanged":
                result.stack = "updated"
            result.image = f"{outputs['EcrRepositoryUri']}:{tag}"
            if pushed:
                result.uploaded.append(result.image)
    final = describe_stack(cf, settings.stack_name)
    result.outputs = stack_outputs(final)
    result.image_tag = next(
        (p["ParameterValue"] for p in final["Parameters"] if p["ParameterKey"] == "ImageTag"), ""
    )
    job = result.outputs.get("GlueJobName")
    if job is None:
        log("warning: the stack has no GlueJobName output: no stream job to start")
    else:
        code_keys = {SCRIPT_KEY, explicit["GlueWheelKey"]}
        result.job_run = ensure_job_run(
            session.client("glue"),
            job,
            new_code=bool(code_keys & set(result.uploaded)),
            log=log,
            timeout=job_timeout,
            poll=job_poll,
        )
    return result


def aws_settings_env(outputs: Mapping[str, str], region: str) -> dict[str, str]:
    """The TELCOPULSE_* variables that point produce, kpi and the dashboard at the stack."""
    env = {f"{ENV_PREFIX}MODE": "aws", f"{ENV_PREFIX}REGION": region}
    missing = [o for o in OUTPUT_SETTINGS.values() if o not in outputs]
    if missing:
        raise DeployError(f"the stack has no output {', '.join(missing)}: is it TelcoPulse's?")
    for setting, output in OUTPUT_SETTINGS.items():
        env[ENV_PREFIX + setting.upper()] = outputs[output]
    return env


def format_summary(result: DeployResult, settings: Settings) -> str:
    outputs = result.outputs
    lines = []
    if not result.changed:
        lines.append(f"stack {settings.stack_name} is up to date: nothing to deploy")
    lines.append(f"dashboard: {outputs.get('DashboardUrl', '(no DashboardUrl output)')}")
    if not result.image_tag:
        lines.append("  (no image pushed yet: the dashboard service runs no task until one is)")
    run = result.job_run
    if run is not None:
        lines.append(f"stream job: {run.job} run {run.run_id} {run.state} ({run.note})")
    lines.append("settings for `telcopulse produce`, `kpi` and `dashboard` against this stack:")
    lines += [f"export {k}={v}" for k, v in aws_settings_env(outputs, settings.region).items()]
    return "\n".join(lines) + "\n"


def destroy(
    settings: Settings,
    *,
    yes: bool,
    log: Log = _stderr,
    session=None,
    job_timeout: float = JOB_STOP_TIMEOUT,
    job_poll: float = JOB_POLL_SECONDS,
) -> list[str]:
    """Stop the stream job, detach the producer policy, empty the stacks' buckets and delete
    the main and bootstrap stacks; return their names."""
    import boto3

    session = session or boto3.session.Session(region_name=settings.region)
    cf = session.client("cloudformation")
    names = [n for n in (settings.stack_name, bootstrap_name(settings)) if describe_stack(cf, n)]
    if not names:
        raise DeployError(
            f"no stack {settings.stack_name} in {settings.region}: nothing to destroy "
            "(set TELCOPULSE_STACK_NAME or TELCOPULSE_REGION if it lives elsewhere)"
        )
    buckets = {name: _owned_buckets(cf, name) for name in names}
    if not yes:
        every = [b for owned in buckets.values() for b in owned]
        raise DeployError(
            f"this deletes {' and '.join(names)} with everything in {', '.join(every)}: "
            "add --yes to confirm"
        )
    main = describe_stack(cf, settings.stack_name)
    outputs = stack_outputs(main) if main else {}
    if "GlueJobName" in outputs:  # before emptying the lake: a running job writes to it
        stop_stream_job(
            session.client("glue"),
            outputs["GlueJobName"],
            log=log,
            timeout=job_timeout,
            poll=job_poll,
        )
    if "ProducerPolicyArn" in outputs:
        detach_producer_policy(session.client("iam"), outputs["ProducerPolicyArn"], log=log)
    s3 = session.resource("s3")
    for name in names:
        for attempt in (1, 2):  # logs can land in a bucket between emptying and deleting it
            for bucket in buckets[name]:
                _empty_bucket(s3, bucket, log)
            log(f"deleting stack {name}")
            cf.delete_stack(StackName=name)
            try:
                _wait_for_stack(cf, name, "stack_delete_complete")
                break
            except DeployError:
                if attempt == 2:
                    raise
    return names


def _owned_buckets(cf, name: str) -> list[str]:
    pages = cf.get_paginator("list_stack_resources").paginate(StackName=name)
    return [
        r["PhysicalResourceId"]
        for page in pages
        for r in page["StackResourceSummaries"]
        if r.get("ResourceType") == "AWS::S3::Bucket" and r.get("PhysicalResourceId")
    ]


def _empty_bucket(s3, bucket: str, log: Log) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.Bucket(bucket).object_versions.delete()
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise
        return
    log(f"emptied s3://{bucket}")


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn what boto3 raises for missing credentials or a refused call into a DeployError."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise DeployError(
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE or "
            "environment variables) and retry"
        ) from None
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"AWS refused: {' '.join(str(exc).split())[:300]}") from None
