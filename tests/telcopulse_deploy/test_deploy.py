"""Deploy and destroy against moto: change sets, staging, artifact upload, image, teardown.

What moto can prove and what it cannot:
- moto runs the CloudFormation API (change sets, waiters, parameters with UsePreviousValue,
  "didn't contain changes", stack events, deletion), S3 (staged template, artifacts,
  versions, emptying), ECR and Kinesis for real, so the deploy flow here is the one that
  runs against AWS.
- moto creates only the resource types it models. From infra/telcopulse.yaml it creates
  the KMS key, buckets, stream, IAM roles, ECR repository, ECS cluster and service, load
  balancer and log groups, and silently skips the Glue database, tables, crawler and job,
  the Athena workgroup, bucket policies, security group egress rules and alarms, so its
  outputs naming those are absent. That the real template deploys in AWS rests on
  cfn-lint and checkov (tests/infra); here it proves the template loads, takes deploy's
  parameters and yields the buckets deploy uploads to.
- moto 5 never resolves the outputs of a stack created through a change set (its stack
  keeps the output map of the empty template it starts from; localstack patches the same
  spot). The ``aws`` fixture makes moto rebuild them after executing a change set, as
  CloudFormation does.
- Most tests use TEST_TEMPLATE: the real template's deploy interface (the parameters
  deploy sets and the outputs it reads, checked against the real template below) on
  resource types moto creates, so outputs resolve, updates work and buckets hold data.
- The stream job. moto's CloudFormation skips AWS::Glue::Job, so the ``aws`` fixture creates
  the job the stack's StreamJob would (``GLUE_JOB``) with moto's Glue API. moto models
  StartJobRun, GetJobRun(s) and MaxConcurrentRuns, but its runs live as a batch job's do:
  STARTING -> RUNNING -> SUCCEEDED, all at the first look by default. A Glue streaming run
  stays RUNNING until it is stopped, so the fixture gives moto's runs that life (STARTING at
  the first look, RUNNING from the second on); one test keeps moto's own and shows deploy
  calling a run that ended SUCCEEDED what it is for a stream job: not running.
- moto 5.2 does not implement BatchStopJobRun (NotImplementedError), and none of its runs
  fail with an ErrorMessage. What needs those (the restart after new code, destroy's stop, a
  FAILED run) runs deploy against moto for everything else and against botocore's Stubber
  for Glue: the stub asserts every Glue call's parameters and order, and answers as Glue
  documents it.
- moto keeps IAM attachments (ListEntitiesForPolicy, Detach*Policy) but deletes an attached
  policy without complaint, where IAM refuses (DeleteConflict); destroy's detaching is shown
  by the attachments being gone, and a refused detach by the Stubber.
- moto's Athena runs no SQL (every query answers no rows), so ``status`` in aws mode is shown
  here for the stream and the job; its batch lines run against a real lake, through DuckDB,
  in tests/backend/test_status.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from cfnlint.decode import decode
from moto import mock_aws
from moto.glue.models import FakeJobRun
from moto.moto_api import state_manager

from backend.aws_stack import JobRun, describe_stack
from backend.catalog import current_views
from backend.cli import main as cli_main
from backend.settings import ENV_PREFIX, Settings, load_settings
from backend.status import collect_status, format_status
from telcopulse_deploy import deploy as deploy_module
from telcopulse_deploy.deploy import (
    ENTRY_SCRIPT,
    MAIN_TEMPLATE,
    OUTPUT_SETTINGS,
    PARAMETER_OPTIONS,
    SCRIPT_KEY,
    DeployError,
    aws_settings_env,
    destroy,
    ensure_job_run,
    ensure_stack,
    find_template,
    format_summary,
)

REGION = "eu-west-1"
NETWORK = {"VpcId": "vpc-0123456789abcdef0", "AllowedIngressCidr": "203.0.113.0/24"}
WHEEL_KEY = "glue/telcopulse_glue_job-0.1.0-py3-none-any.whl"
GLUE_JOB = "telcopulse-stream"
MOTO_JOB_RUN_INIT = FakeJobRun.__init__  # before any test gives runs a streaming life
TEST_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: infra/telcopulse.yaml's deploy interface on resource types moto creates.
Parameters:
  ProjectName: {Type: String, Default: telcopulse}
  VpcId: {Type: String}
  AllowedIngressCidr: {Type: String}
  GlueScriptKey: {Type: String, Default: glue/telcopulse_glue_entry.py}
  GlueWheelKey: {Type: String, Default: glue/telcopulse_glue_job-0.1.0-py3-none-any.whl}
  ImageTag: {Type: String, Default: ""}
  DashboardCpuArchitecture: {Type: String, Default: X86_64}
Resources:
  ArtifactsBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${ProjectName}-artifacts-${AWS::AccountId}-${AWS::Region}"
      VersioningConfiguration: {Status: Enabled}
  LakeBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${ProjectName}-lake-${AWS::AccountId}-${AWS::Region}"
      VersioningConfiguration: {Status: Enabled}
  AthenaResultsBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${ProjectName}-athena-${AWS::AccountId}-${AWS::Region}"
  EventStream:
    Type: AWS::Kinesis::Stream
    Properties: {Name: !Sub "${ProjectName}-events", ShardCount: 1}
  DashboardRepository:
    Type: AWS::ECR::Repository
    Properties: {RepositoryName: !Sub "${ProjectName}-dashboard"}
  ProducerPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Action: "kinesis:PutRecords", Resource: !GetAtt EventStream.Arn}
Outputs:
  StreamName: {Value: !Ref EventStream}
  ProducerPolicyArn: {Value: !Ref ProducerPolicy}
  LakeUri: {Value: !Sub "s3://${LakeBucket}"}
  ArtifactsBucketName: {Value: !Ref ArtifactsBucket}
  GlueJobName: {Value: !Sub "${ProjectName}-stream"}
  GlueDatabaseName: {Value: !Ref ProjectName}
  AthenaWorkGroupName: {Value: !Ref ProjectName}
  AthenaOutputLocation: {Value: !Sub "s3://${AthenaResultsBucket}/results/"}
  EcrRepositoryUri: {Value: !GetAtt DashboardRepository.RepositoryUri}
  DashboardUrl: {Value: !Sub "http://${ProjectName}-dashboard.${AWS::Region}.elb.amazonaws.com"}
"""


@pytest.fixture
def aws(monkeypatch):
    """moto for every AWS call, with change-set-created stacks getting their outputs."""
    from moto.cloudformation.models import CloudFormationBackend

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    original = CloudFormationBackend.execute_change_set

    def execute_and_resolve_outputs(self, change_set_name, stack_name=None):
        original(self, change_set_name, stack_name)
        for stack in self.stacks.values():
            if stack.template:
                stack._parse_template()
                stack.output_map = stack._create_output_map()

    monkeypatch.setattr(CloudFormationBackend, "execute_change_set", execute_and_resolve_outputs)
    streaming_job_runs(monkeypatch)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        # TEST_TEMPLATE names this workgroup in its outputs; the views are created in it.
        session.client("athena").create_work_group(Name="telcopulse")
        # The job the stack's StreamJob creates in AWS (moto's CloudFormation skips it).
        session.client("glue").create_job(
            Name=GLUE_JOB,
            Role="arn:aws:iam::123456789012:role/telcopulse-glue",
            Command={"Name": "gluestreaming", "ScriptLocation": f"s3://artifacts/{SCRIPT_KEY}"},
            GlueVersion="5.0",
            ExecutionProperty={"MaxConcurrentRuns": 1},
        )
        yield session
    state_manager.unset_transition("glue::job_run")


def streaming_job_runs(monkeypatch, looks_to_run: int = 2) -> None:
    """moto's job runs live as a Glue streaming run: STARTING until the ``looks_to_run``-th
    GetJobRun(s), then RUNNING until stopped (moto's own end SUCCEEDED at the first look)."""
    original = FakeJobRun.__init__

    def streaming(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._transitions = [("STARTING", "RUNNING")]

    monkeypatch.setattr(FakeJobRun, "__init__", streaming)
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": looks_to_run})


def deploy(settings, **kwargs):
    """``deploy`` (the tooling's) looking at a starting run again at once (not after 10 s)."""
    return deploy_module.deploy(settings, **{"job_poll": 0, **kwargs})


def glue_runs(session) -> list[tuple[str, str]]:
    runs = session.client("glue").get_job_runs(JobName=GLUE_JOB)["JobRuns"]
    return [(r["Id"], r["JobRunState"]) for r in runs]


class WithGlue:
    """A boto3 session whose Glue client is ``glue`` (a stubbed one); every other client is
    the wrapped session's (moto's)."""

    def __init__(self, session, glue) -> None:
        self.session, self.glue = session, glue

    def client(self, name, *args, **kwargs):
        if name == "glue":
            return self.glue
        return self.session.client(name, *args, **kwargs)

    def resource(self, name, *args, **kwargs):
        return self.session.resource(name, *args, **kwargs)


def api_run(run_id: str, state: str, **extra) -> dict:
    """A JobRun as GetJobRun(s) returns it."""
    return {"Id": run_id, "JobName": GLUE_JOB, "JobRunState": state, **extra}


@pytest.fixture
def no_docker(monkeypatch):
    real_which = deploy_module.shutil.which
    monkeypatch.setattr(
        deploy_module.shutil, "which", lambda cmd: None if cmd == "docker" else real_which(cmd)
    )


@pytest.fixture(scope="session")
def glue_wheel(tmp_path_factory) -> Path:
    """The glue_job wheel, built once a session by the real ``build_glue_wheel``."""
    return deploy_module.build_glue_wheel(tmp_path_factory.mktemp("glue-wheel"))


@pytest.fixture(autouse=True)
def wheel_built_once(request, monkeypatch, glue_wheel) -> None:
    """Each deploy gets a copy of the session's wheel instead of building its own: a build is
    a ``pip wheel`` of about 2 s, and these tests deploy 40 times. A test that asks for
    ``real_wheel_builds`` builds every time, as deploy does."""
    if "real_wheel_builds" in request.fixturenames:
        return

    def copy_built(out_dir: Path) -> Path:
        (out_dir / "wheel").mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(glue_wheel, out_dir / "wheel" / glue_wheel.name))

    monkeypatch.setattr(deploy_module, "build_glue_wheel", copy_built)


@pytest.fixture
def real_wheel_builds() -> None:
    """Deploy builds the wheel itself, every time (``wheel_built_once`` stands aside)."""


@pytest.fixture
def template(tmp_path) -> Path:
    path = tmp_path / "telcopulse.yaml"
    path.write_text(TEST_TEMPLATE)
    return path


@pytest.fixture
def settings(tmp_path):
    return load_settings(region=REGION, home=tmp_path / "home")


def stack(session, name="telcopulse"):
    return session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]


def parameters(session, name="telcopulse") -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack(session, name)["Parameters"]}


def versions(session, bucket: str, key: str) -> int:
    listed = session.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    return len(listed.get("Versions", []))


def test_first_deploy_creates_the_stacks_and_uploads_the_glue_job(
    aws, settings, template, no_docker
):
    messages: list[str] = []
    result = deploy(
        settings, parameters=NETWORK, template=template, log=messages.append, job_poll=0
    )

    assert result.stack == "created"
    assert stack(aws)["StackStatus"] == "CREATE_COMPLETE"
    assert stack(aws, "telcopulse-bootstrap")["StackStatus"] == "CREATE_COMPLETE"
    assert parameters(aws) | NETWORK == parameters(aws)
    assert parameters(aws)["GlueScriptKey"] == SCRIPT_KEY
    assert parameters(aws)["GlueWheelKey"] == WHEEL_KEY
    assert parameters(aws)["ProjectName"] == "telcopulse"

    s3 = aws.client("s3")
    bucket = result.outputs["ArtifactsBucketName"]
    assert sorted(result.uploaded) == [SCRIPT_KEY, WHEEL_KEY]
    script = s3.get_object(Bucket=bucket, Key=SCRIPT_KEY)["Body"].read()
    assert script == ENTRY_SCRIPT.read_bytes()
    wheel = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=WHEEL_KEY)["Body"].read()))
    names = wheel.namelist()
    assert {n.split("/")[0] for n in names} == {"glue_job", "telcopulse_glue_job-0.1.0.dist-info"}
    assert {"glue_job/glue_entry.py", "glue_job/batch.py", "glue_job/operator_aliases.csv"} <= set(
        names
    )
    metadata = wheel.read("telcopulse_glue_job-0.1.0.dist-info/METADATA").decode()
    assert "Name: telcopulse-glue-job" in metadata
    assert "Requires-Dist" not in metadata  # pyspark, boto3 and numpy come with Glue

    # The main template went through the bootstrap bucket (it is too big to send inline).
    staging = stack(aws, "telcopulse-bootstrap")["Outputs"][0]["OutputValue"]
    staged = s3.list_objects_v2(Bucket=staging)["Contents"]
    assert [s3.get_object(Bucket=staging, Key=o["Key"])["Body"].read() for o in staged] == [
        template.read_bytes()
    ]
    assert any("skipped the dashboard image" in m for m in messages)

    # The views of current rows went to Athena, as the DuckDB engine creates them locally.
    athena = aws.client("athena")
    ran = [
        athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]
        for q in athena.list_query_executions(WorkGroup="telcopulse")["QueryExecutionIds"]
    ]
    assert sorted(result.views) == sorted(current_views())
    assert sorted(q["Query"] for q in ran) == sorted(current_views().values())
    assert {q["QueryExecutionContext"]["Database"] for q in ran} == {"telcopulse"}

    # The stream job: started once its code was uploaded, then watched until RUNNING.
    [(run_id, state)] = glue_runs(aws)
    assert state == "RUNNING"
    assert result.job_run == JobRun(
        GLUE_JOB, run_id, "RUNNING", result.job_run.started_on, note="started"
    )
    job_lines = [m for m in messages if m.startswith(f"stream job {GLUE_JOB}")]
    assert job_lines == [
        f"stream job {GLUE_JOB}: started run {run_id}; waiting up to 600s for RUNNING",
        f"stream job {GLUE_JOB}: run {run_id} is RUNNING",
    ]
    assert messages.index(f"uploaded s3://{bucket}/{WHEEL_KEY}") < messages.index(job_lines[0])

    summary = format_summary(result, settings)
    assert "dashboard: http://telcopulse-dashboard.eu-west-1.elb.amazonaws.com" in summary
    assert "no image pushed yet" in summary
    assert f"stream job: {GLUE_JOB} run {run_id} RUNNING (started)\n" in summary
    assert "start-job-run" not in summary  # deploy started it: no hint to do it by hand
    assert f"export {ENV_PREFIX}LAKE_URI=s3://telcopulse-lake-" in summary


def test_settings_from_the_outputs_pass_load_settings_in_aws_mode(
    aws, settings, template, no_docker, monkeypatch
):
    result = deploy(settings, parameters=NETWORK, template=template, log=lambda _m: None)
    env = aws_settings_env(result.outputs, REGION)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    loaded = load_settings()
    assert loaded.mode == "aws"
    assert loaded.lake == result.outputs["LakeUri"]
    assert loaded.athena_workgroup == "telcopulse"
    assert loaded.athena_output == result.outputs["AthenaOutputLocation"]
    assert loaded.stream_name == "telcopulse-events"
    assert loaded.region == REGION
    # `telcopulse produce` finds the stack's stream without needing kinesis:CreateStream,
    # which the stack's ProducerPolicy does not grant.
    from backend.kinesis import ensure_stream, kinesis_client

    client = kinesis_client(loaded)

    def denied(**_kwargs):
        raise AssertionError("CreateStream called for a stream that exists")

    monkeypatch.setattr(client, "create_stream", denied)
    ensure_stream(client, loaded.stream_name, loaded.shards)


def test_second_deploy_without_changes_is_a_no_op(
    aws, settings, template, no_docker, real_wheel_builds
):
    first = deploy(settings, parameters=NETWORK, template=template, log=lambda _m: None)
    bucket = first.outputs["ArtifactsBucketName"]
    # Versioned like the real one (moto's CloudFormation ignores VersioningConfiguration):
    # a second upload would add a version next to the first, unversioned one.
    aws.client("s3").put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    cf = aws.client("cloudformation")
    change_sets = cf.list_change_sets(StackName="telcopulse")["Summaries"]

    messages: list[str] = []
    again = deploy(settings, template=template, log=messages.append)  # a user's plain re-run

    assert again.stack == "unchanged"
    assert again.uploaded == []
    assert not again.changed
    assert cf.list_change_sets(StackName="telcopulse")["Summaries"] == change_sets
    assert versions(aws, bucket, WHEEL_KEY) == 1  # the rebuilt wheel is byte-identical
    assert versions(aws, bucket, SCRIPT_KEY) == 1
    assert not any(m.startswith(("creating", "updating", "uploaded")) for m in messages)
    # The running stream job is left alone: no run stopped, none started.
    [(run_id, state)] = glue_runs(aws)
    assert (run_id, state) == (first.job_run.run_id, "RUNNING")
    assert again.job_run.run_id == run_id
    assert again.job_run.note == "left running: nothing changed"
    assert not any("started run" in m or "stopping" in m for m in messages)
    summary = format_summary(again, settings)
    assert summary.startswith("stack telcopulse is up to date: nothing to deploy\n")
    assert f"stream job: {GLUE_JOB} run {run_id} RUNNING (left running: nothing changed)" in summary


def test_a_change_set_without_changes_is_deleted_not_executed(aws):
    cf = aws.client("cloudformation")
    body = "Resources:\n  Bucket: {Type: AWS::S3::Bucket}\n"
    assert ensure_stack(cf, "plain", body=body, parameters={}, log=lambda _m: None) == "created"
    # Different text, same template: CloudFormation answers "didn't contain changes".
    assert ensure_stack(cf, "plain", body=body + "\n# a comment\n", parameters={}) == "unchanged"
    summaries = cf.list_change_sets(StackName="plain")["Summaries"]
    assert [s["ExecutionStatus"] for s in summaries] == ["EXECUTE_COMPLETE"]
    assert stack(aws, "plain")["StackStatus"] == "CREATE_COMPLETE"


def test_an_update_changes_what_is_given_and_keeps_the_rest(aws, settings, template, no_docker):
    deploy(settings, parameters=NETWORK, template=template, log=lambda _m: None)
    result = deploy(
        settings,
        parameters={"AllowedIngressCidr": "198.51.100.7/32"},
        template=template,
        log=lambda _m: None,
    )
    assert result.stack == "updated"
    assert stack(aws)["StackStatus"] == "UPDATE_COMPLETE"
    assert parameters(aws)["AllowedIngressCidr"] == "198.51.100.7/32"
    assert parameters(aws)["VpcId"] == NETWORK["VpcId"]  # given once, kept


def test_first_deploy_names_the_options_it_needs(aws, settings, template, no_docker):
    with pytest.raises(DeployError, match=r"needs --vpc-id, --allowed-cidr$"):
        deploy(settings, template=template, log=lambda _m: None)
    assert describe_stack(aws.client("cloudformation"), "telcopulse") is None

    with pytest.raises(DeployError, match="ShardCout: not a parameter of the template"):
        deploy(settings, parameters={**NETWORK, "ShardCout": "2"}, template=template)


def test_destroy_asks_then_stops_the_job_detaches_the_policy_and_deletes_everything(
    aws, settings, template, no_docker
):
    result = deploy(settings, parameters=NETWORK, template=template, log=lambda _m: None)
    s3 = aws.client("s3")
    lake = result.outputs["LakeUri"].removeprefix("s3://")
    # Versioned like the real lake bucket (moto's CloudFormation ignores VersioningConfiguration).
    s3.put_bucket_versioning(Bucket=lake, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2"):  # two versions: emptying must remove every version
        s3.put_object(Bucket=lake, Key="silver/part-0.parquet", Body=body)
    s3.delete_object(Bucket=lake, Key="silver/part-0.parquet")  # and the delete marker
    # Someone attached the producer policy outside the stack, as its output says to.
    iam = aws.client("iam")
    policy = result.outputs["ProducerPolicyArn"]
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_user(UserName="alice")
    iam.create_group(GroupName="producers")
    iam.create_role(RoleName="producer-task", AssumeRolePolicyDocument=trust)
    iam.attach_user_policy(UserName="alice", PolicyArn=policy)
    iam.attach_group_policy(GroupName="producers", PolicyArn=policy)
    iam.attach_role_policy(RoleName="producer-task", PolicyArn=policy)

    with pytest.raises(DeployError, match=r"add --yes to confirm$") as refused:
        destroy(settings, yes=False)
    assert lake in str(refused.value)
    assert versions(aws, lake, "silver/") == 2  # nothing touched
    assert len(iam.list_entities_for_policy(PolicyArn=policy)["PolicyUsers"]) == 1

    # Glue through the Stubber: moto has no BatchStopJobRun.
    [(run_id, _)] = glue_runs(aws)
    glue = aws.client("glue")
    stub = Stubber(glue)
    job = {"JobName": GLUE_JOB}
    stub.add_response("get_job_runs", {"JobRuns": [api_run(run_id, "RUNNING")]}, job)
    stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": run_id}], "Errors": []},
        {**job, "JobRunIds": [run_id]},
    )
    for state in ("STOPPING", "STOPPED"):
        stub.add_response(
            "get_job_run", {"JobRun": api_run(run_id, state)}, {**job, "RunId": run_id}
        )
    messages: list[str] = []
    with stub:
        names = destroy(
            settings, yes=True, log=messages.append, session=WithGlue(aws, glue), job_poll=0
        )
    stub.assert_no_pending_responses()
    assert names == ["telcopulse", "telcopulse-bootstrap"]

    stopped = f"stream job {GLUE_JOB}: run {run_id} is STOPPED"
    detached = [m for m in messages if m.startswith("detached")]
    assert sorted(detached) == [
        "detached the producer policy from group producers",
        "detached the producer policy from role producer-task",
        "detached the producer policy from user alice",
    ]
    # The job stopped before the lake was emptied: nothing writes to it after.
    assert messages.index(stopped) < messages.index(detached[0])
    assert messages.index(detached[-1]) < messages.index(f"emptied s3://{lake}")
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    assert iam.list_attached_group_policies(GroupName="producers")["AttachedPolicies"] == []
    assert iam.list_attached_role_policies(RoleName="producer-task")["AttachedPolicies"] == []

    cf = aws.client("cloudformation")
    assert describe_stack(cf, "telcopulse") is None
    assert describe_stack(cf, "telcopulse-bootstrap") is None
    assert s3.list_buckets()["Buckets"] == []

    with pytest.raises(DeployError, match="nothing to destroy"):
        destroy(settings, yes=True)


def test_a_refused_detach_names_the_command_that_detaches(aws):
    iam = aws.client("iam")
    policy = "arn:aws:iam::123456789012:policy/telcopulse-ProducerPolicy-ABC"
    stub = Stubber(iam)
    stub.add_response(
        "list_entities_for_policy",
        {"PolicyUsers": [{"UserName": "alice", "UserId": "AIDAEXAMPLEALICE0001"}]},
        {"PolicyArn": policy},
    )
    stub.add_client_error(
        "detach_user_policy",
        service_error_code="AccessDenied",
        service_message="not authorized to perform: iam:DetachUserPolicy",
        http_status_code=403,
        expected_params={"UserName": "alice", "PolicyArn": policy},
    )
    with stub, pytest.raises(DeployError) as refused:
        deploy_module.detach_producer_policy(iam, policy, log=lambda _m: None)
    assert str(refused.value) == (
        "cannot detach the producer policy from user alice (AccessDenied): run "
        f"`aws iam detach-user-policy --user-name alice --policy-arn {policy}` as someone "
        "allowed to, then `telcopulse destroy --yes` again"
    )


def write_fake_docker(bin_dir: Path, log: Path) -> None:
    """A docker CLI that answers like one with an engine, recording each call."""
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'case "$1" in\n'
        "  info) echo 27.0.0 ;;\n"
        "  image) echo sha256:0123456789abcdef0123456789abcdef ;;\n"
        f'  login) cat >> "{log}"; echo >> "{log}" ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_image_is_built_pushed_and_becomes_the_image_tag(
    aws, settings, template, tmp_path, monkeypatch
):
    calls = tmp_path / "docker-calls.txt"
    write_fake_docker(tmp_path, calls)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = deploy(
        settings,
        parameters={**NETWORK, "DashboardCpuArchitecture": "ARM64"},
        template=template,
        log=lambda _m: None,
    )

    repository = result.outputs["EcrRepositoryUri"]
    assert result.image == f"{repository}:0123456789ab"
    assert parameters(aws)["ImageTag"] == "0123456789ab"
    lines = calls.read_text().splitlines()
    build = next(line for line in lines if line.startswith("build"))
    assert "--platform linux/arm64" in build
    login = lines.index(next(line for line in lines if line.startswith("login")))
    assert lines[login].endswith(repository.split("/")[0])
    assert lines[login + 1]  # the password went in on stdin, not on the command line
    assert f"push {repository}:0123456789ab" in lines

    # The registry now holds that tag: a re-run pushes nothing and changes nothing.
    ecr = aws.client("ecr")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    }
    ecr.put_image(
        repositoryName=repository.split("/", 1)[1],
        imageManifest=json.dumps(manifest),
        imageTag="0123456789ab",
    )
    calls.write_text("")
    again = deploy(settings, template=template, log=lambda _m: None)
    assert not again.changed
    assert not [line for line in calls.read_text().splitlines() if line.startswith("push")]
    assert again.image_tag == "0123456789ab"
    assert "no image pushed yet" not in format_summary(again, settings)


def test_the_real_template_deploys_in_moto_as_far_as_moto_models_it(aws, settings, no_docker):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    network = {
        "VpcId": vpc,
        "AlbSubnetIds": ",".join(subnets),
        "ServiceSubnetIds": ",".join(subnets),
        "AllowedIngressCidr": "203.0.113.0/24",
    }
    # No template given: the one installed with the deploy tooling, infra/telcopulse.yaml.
    result = deploy(settings, parameters=network, log=lambda _m: None)

    assert result.stack == "created"
    assert stack(aws)["StackStatus"] == "CREATE_COMPLETE"
    bucket = result.outputs["ArtifactsBucketName"]
    assert bucket == f"telcopulse-artifacts-123456789012-{REGION}"
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == [SCRIPT_KEY, WHEEL_KEY]
    assert aws.client("kinesis").describe_stream_summary(StreamName="telcopulse-events")
    assert result.outputs["EcrRepositoryUri"].endswith("/telcopulse-dashboard")
    assert result.outputs["DashboardUrl"].startswith("http://")
    # Outputs of the resource types moto skips (Glue, Athena) are the only ones missing.
    _, real = template_and_outputs()
    assert set(real) - set(result.outputs) == {
        "GlueJobName",
        "GlueCrawlerName",
        "GlueDatabaseName",
        "AthenaWorkGroupName",
    }

    assert destroy(settings, yes=True, log=lambda _m: None) == [
        "telcopulse",
        "telcopulse-bootstrap",
    ]
    assert aws.client("s3").list_buckets()["Buckets"] == []


def template_and_outputs() -> tuple[dict, dict]:
    loaded, errors = decode(str(find_template(MAIN_TEMPLATE)))
    assert not errors
    return loaded, loaded["Outputs"]


def test_deploy_and_the_test_template_match_the_real_templates_interface(template):
    real, outputs = template_and_outputs()
    params = real["Parameters"]
    test_params, test_errors = decode(str(template))
    assert not test_errors
    # The test double declares nothing the real template lacks, with the same defaults.
    for name, spec in test_params["Parameters"].items():
        assert name in params, name
        assert spec.get("Default") == params[name].get("Default"), name
    assert set(test_params["Outputs"]) <= set(outputs)

    required = {name for name, spec in params.items() if "Default" not in spec}
    assert required <= set(PARAMETER_OPTIONS), "every required parameter has an option"
    assert set(PARAMETER_OPTIONS) <= set(params)
    assert params["GlueScriptKey"]["Default"] == SCRIPT_KEY
    assert params["GlueWheelKey"]["Default"] == WHEEL_KEY
    assert {"ProjectName", "ImageTag", "DashboardCpuArchitecture"} <= set(params)
    assert set(params["DashboardCpuArchitecture"]["AllowedValues"]) == set(deploy_module.PLATFORMS)
    needed = {*OUTPUT_SETTINGS.values(), "ArtifactsBucketName", "EcrRepositoryUri"}
    assert needed | {"DashboardUrl", "GlueJobName"} <= set(outputs)
    # ProjectName's pattern is the settings field's.
    project = Settings.model_fields["project_name"].metadata
    assert any(
        getattr(m, "pattern", None) == params["ProjectName"]["AllowedPattern"] for m in project
    )


def test_cli_errors_are_one_line(aws, capsys, tmp_path, monkeypatch, no_docker):
    monkeypatch.setenv("TELCOPULSE_REGION", REGION)
    assert cli_main(["--home", str(tmp_path), "destroy"]) == 2
    assert capsys.readouterr().err == (
        f"telcopulse: error: no stack telcopulse in {REGION}: nothing to destroy "
        "(set TELCOPULSE_STACK_NAME or TELCOPULSE_REGION if it lives elsewhere)\n"
    )
    assert cli_main(["--home", str(tmp_path), "deploy", "--parameter", "oops"]) == 2
    assert "--parameter takes NAME=VALUE" in capsys.readouterr().err

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli_main(["--home", str(tmp_path), "destroy", "--yes"]) == 2
    assert capsys.readouterr().err == (
        "telcopulse: error: no AWS credentials found: configure them (aws configure, "
        "AWS_PROFILE or environment variables) and retry\n"
    )


# -- the stream job -------------------------------------------------------------------------


def rebuilt_wheel(monkeypatch) -> None:
    """The next deploy builds a wheel with other bytes, as a change to glue_job/ would."""
    real_build = deploy_module.build_glue_wheel

    def changed_build(out_dir: Path) -> Path:
        wheel = real_build(out_dir)
        with zipfile.ZipFile(wheel, "a") as archive:
            archive.writestr("glue_job/_changed.py", "CHANGED = True\n")
        return wheel

    monkeypatch.setattr(deploy_module, "build_glue_wheel", changed_build)


def test_a_redeploy_with_a_new_wheel_stops_the_run_and_starts_one(
    aws, settings, template, no_docker, monkeypatch
):
    first = deploy(settings, parameters=NETWORK, template=template, log=lambda _m: None)
    old = first.job_run.run_id
    rebuilt_wheel(monkeypatch)

    glue = aws.client("glue")
    stub = Stubber(glue)
    job = {"JobName": GLUE_JOB}
    stub.add_response("get_job_runs", {"JobRuns": [api_run(old, "RUNNING")]}, job)
    stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": old}], "Errors": []},
        {**job, "JobRunIds": [old]},
    )
    for state in ("STOPPING", "STOPPED"):
        stub.add_response("get_job_run", {"JobRun": api_run(old, state)}, {**job, "RunId": old})
    stub.add_response("start_job_run", {"JobRunId": "jr_new"}, job)
    for state in ("STARTING", "RUNNING"):
        stub.add_response(
            "get_job_run", {"JobRun": api_run("jr_new", state)}, {**job, "RunId": "jr_new"}
        )
    messages: list[str] = []
    with stub:
        again = deploy(
            settings, template=template, log=messages.append, session=WithGlue(aws, glue)
        )
    stub.assert_no_pending_responses()  # stopped, waited for STOPPED, then started

    assert again.uploaded == [WHEEL_KEY]
    assert again.job_run.run_id == "jr_new"
    assert again.job_run.state == "RUNNING"
    assert again.job_run.note == "restarted: a new script or wheel was uploaded"
    assert [m for m in messages if m.startswith("stream job")] == [
        f"stream job {GLUE_JOB}: a new script or wheel was uploaded: a new run replaces run "
        f"{old} and resumes from its checkpoint",
        f"stream job {GLUE_JOB}: stopping run {old}",
        f"stream job {GLUE_JOB}: run {old} is STOPPED",
        f"stream job {GLUE_JOB}: started run jr_new; waiting up to 600s for RUNNING",
        f"stream job {GLUE_JOB}: run jr_new is RUNNING",
    ]
    assert (
        f"stream job: {GLUE_JOB} run jr_new RUNNING (restarted: a new script or wheel was "
        "uploaded)" in format_summary(again, settings)
    )


def test_a_run_started_before_the_job_changed_is_restarted():
    glue = boto3.client(
        "glue", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    started = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    job = {"JobName": GLUE_JOB}
    stub = Stubber(glue)
    stub.add_response(
        "get_job_runs", {"JobRuns": [api_run("jr_old", "RUNNING", StartedOn=started)]}, job
    )
    # A stack update changed the job's arguments (say TriggerSeconds) after the run started.
    stub.add_response(
        "get_job",
        {"Job": {"Name": GLUE_JOB, "LastModifiedOn": started + timedelta(minutes=5)}},
        job,
    )
    stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [], "Errors": []},
        {**job, "JobRunIds": ["jr_old"]},
    )
    stub.add_response(
        "get_job_run", {"JobRun": api_run("jr_old", "STOPPED")}, {**job, "RunId": "jr_old"}
    )
    stub.add_response("start_job_run", {"JobRunId": "jr_new"}, job)
    stub.add_response(
        "get_job_run", {"JobRun": api_run("jr_new", "RUNNING")}, {**job, "RunId": "jr_new"}
    )
    with stub:
        run = ensure_job_run(glue, GLUE_JOB, new_code=False, log=lambda _m: None, poll=0)
    stub.assert_no_pending_responses()
    assert (run.run_id, run.state) == ("jr_new", "RUNNING")
    assert run.note == "restarted: the stack changed the job's definition"


def test_a_failed_run_fails_deploy_with_its_error_and_what_to_do():
    glue = boto3.client(
        "glue", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    job = {"JobName": GLUE_JOB}
    error = "Glue version 5.0 is not supported for the job command gluestreaming."
    stub = Stubber(glue)
    stub.add_response("get_job_runs", {"JobRuns": [api_run("jr_1", "FAILED")]}, job)
    stub.add_response("start_job_run", {"JobRunId": "jr_2"}, job)
    stub.add_response(
        "get_job_run", {"JobRun": api_run("jr_2", "STARTING")}, {**job, "RunId": "jr_2"}
    )
    stub.add_response(
        "get_job_run",
        {"JobRun": api_run("jr_2", "FAILED", ErrorMessage=f"{error}\n  (attempt 0)")},
        {**job, "RunId": "jr_2"},
    )
    with stub, pytest.raises(DeployError) as failed:
        ensure_job_run(glue, GLUE_JOB, new_code=False, log=lambda _m: None, poll=0)
    assert str(failed.value) == (
        f"the stream job {GLUE_JOB} run jr_2 FAILED: {error} (attempt 0); Glue refuses the "
        "job's Glue version here: deploy again with `--parameter GlueVersion=5.1` (see "
        f"docs/aws.md); details: aws glue get-job-run --job-name {GLUE_JOB} --run-id jr_2"
    )


def test_a_run_still_starting_when_the_wait_ends_is_reported_as_such():
    glue = boto3.client(
        "glue", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    job = {"JobName": GLUE_JOB}
    stub = Stubber(glue)
    stub.add_response("get_job_runs", {"JobRuns": []}, job)
    stub.add_response("start_job_run", {"JobRunId": "jr_1"}, job)
    stub.add_response(
        "get_job_run", {"JobRun": api_run("jr_1", "STARTING")}, {**job, "RunId": "jr_1"}
    )
    with stub:
        run = ensure_job_run(glue, GLUE_JOB, new_code=True, log=lambda _m: None, timeout=0)
    assert (run.state, run.note) == ("STARTING", "started; still STARTING after 0s")


def test_a_refused_or_endless_stop_names_the_command_that_stops_the_run():
    glue = boto3.client(
        "glue", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    job = {"JobName": GLUE_JOB}
    running = [JobRun(GLUE_JOB, "jr_1", "RUNNING")]
    stub = Stubber(glue)
    stub.add_client_error(
        "batch_stop_job_run",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized to perform: glue:BatchStopJobRun",
        expected_params={**job, "JobRunIds": ["jr_1"]},
    )
    with stub, pytest.raises(DeployError) as refused:
        deploy_module.stop_job_runs(glue, GLUE_JOB, running, log=lambda _m: None, poll=0)
    assert str(refused.value) == (
        f"stopping the stream job {GLUE_JOB} failed (AccessDeniedException: User is not "
        "authorized to perform: glue:BatchStopJobRun): stop it (aws glue batch-stop-job-run "
        f"--job-name {GLUE_JOB} --job-run-ids jr_1), then retry"
    )

    stub = Stubber(glue)
    stub.add_response(
        "batch_stop_job_run",
        {"Errors": [{"JobRunId": "jr_1", "ErrorDetail": {"ErrorCode": "X", "ErrorMessage": "y"}}]},
        {**job, "JobRunIds": ["jr_1"]},
    )
    stub.add_response(
        "get_job_run", {"JobRun": api_run("jr_1", "STOPPING")}, {**job, "RunId": "jr_1"}
    )
    with stub, pytest.raises(DeployError) as endless:
        deploy_module.stop_job_runs(glue, GLUE_JOB, running, log=lambda _m: None, timeout=0)
    assert str(endless.value) == (
        f"the stream job {GLUE_JOB} run jr_1 is still STOPPING after 0s (BatchStopJobRun: X: y): "
        f"stop it (aws glue batch-stop-job-run --job-name {GLUE_JOB} --job-run-ids jr_1) and "
        "retry once it has stopped"
    )


@pytest.mark.usefixtures("no_docker")
def test_moto_s_own_runs_end_at_once_and_deploy_calls_that_a_failure(
    aws, capsys, tmp_path, template, monkeypatch
):
    # moto's own life for a run (STARTING -> RUNNING -> SUCCEEDED at the first look): a
    # streaming run that ended is not processing the stream, whatever the state's name.
    monkeypatch.setattr(FakeJobRun, "__init__", MOTO_JOB_RUN_INIT)
    state_manager.set_transition("glue::job_run", {"progression": "immediate"})
    monkeypatch.setenv("TELCOPULSE_REGION", REGION)
    command = ["--home", str(tmp_path), "deploy", "--template", str(template)]
    command += ["--vpc-id", NETWORK["VpcId"], "--allowed-cidr", NETWORK["AllowedIngressCidr"]]

    assert cli_main(command) == 2
    [(run_id, state)] = glue_runs(aws)
    assert state == "SUCCEEDED"
    out, err = capsys.readouterr()
    assert out == ""  # no summary: the deploy failed
    assert err.splitlines()[-1] == (
        f"telcopulse: error: the stream job {GLUE_JOB} run {run_id} SUCCEEDED (a streaming run "
        "should keep running until it is stopped); details: aws glue get-job-run --job-name "
        f"{GLUE_JOB} --run-id {run_id}"
    )


@pytest.mark.usefixtures("no_docker")
def test_cli_deploy_starts_the_job_and_prints_its_state(
    aws, capsys, tmp_path, template, monkeypatch
):
    streaming_job_runs(monkeypatch, looks_to_run=1)  # RUNNING at the first look: no 10 s poll
    monkeypatch.setenv("TELCOPULSE_REGION", REGION)
    command = ["--home", str(tmp_path), "deploy", "--template", str(template)]
    command += ["--vpc-id", NETWORK["VpcId"], "--allowed-cidr", NETWORK["AllowedIngressCidr"]]

    assert cli_main(command) == 0
    [(run_id, state)] = glue_runs(aws)
    assert state == "RUNNING"
    out, err = capsys.readouterr()
    assert f"stream job: {GLUE_JOB} run {run_id} RUNNING (started)\n" in out
    assert "start-job-run" not in out
    assert f"stream job {GLUE_JOB}: run {run_id} is RUNNING\n" in err

    assert cli_main([*command[:3], "--template", str(template)]) == 0  # nothing changed
    assert glue_runs(aws) == [(run_id, "RUNNING")]
    assert f"run {run_id} RUNNING (left running: nothing changed)" in capsys.readouterr().out


STACK_EVENTS = [  # newest first, as DescribeStackEvents answers
    ("telcopulse", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", ""),
    ("telcopulse", "AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS", "resource failed"),
    (
        "StreamJob",
        "AWS::Glue::Job",
        "CREATE_FAILED",
        'Resource handler returned message: "Glue version 5.0 is not supported for streaming '
        'jobs in this Region" (Service: Glue, Status Code: 400, InvalidInputException)',
    ),
    ("StreamJob", "AWS::Glue::Job", "CREATE_IN_PROGRESS", ""),
]


def stack_failure(events, status: str):
    cf = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(cf)
    now = datetime.now(UTC)
    stub.add_response(
        "describe_stacks",
        {"Stacks": [{"StackName": "telcopulse", "CreationTime": now, "StackStatus": status}]},
        {"StackName": "telcopulse"},
    )
    stub.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                {
                    "StackId": "id",
                    "EventId": str(i),
                    "StackName": "telcopulse",
                    "LogicalResourceId": logical,
                    "ResourceType": kind,
                    "Timestamp": now,
                    "ResourceStatus": state,
                    **({"ResourceStatusReason": reason} if reason else {}),
                }
                for i, (logical, kind, state, reason) in enumerate(events)
            ]
        },
        {"StackName": "telcopulse"},
    )
    return cf, stub


NOT_SUPPORTED = (
    'Resource handler returned message: "Streaming jobs are not supported with the requested '
    'version" (Service: Glue, Status Code: 400, InvalidInputException)'
)


@pytest.mark.parametrize(
    ("waiter", "status", "first", "reason"),
    [
        (
            "stack_create_complete",
            "ROLLBACK_COMPLETE",
            "run `telcopulse destroy --yes`, then ",
            STACK_EVENTS[2][3],
        ),
        ("stack_update_complete", "UPDATE_ROLLBACK_COMPLETE", "", STACK_EVENTS[2][3]),
        ("stack_update_complete", "UPDATE_ROLLBACK_COMPLETE", "", NOT_SUPPORTED),
    ],
)
def test_a_refused_glue_version_says_to_deploy_with_5_1(waiter, status, first, reason):
    events = [*STACK_EVENTS[:2], (*STACK_EVENTS[2][:3], reason), *STACK_EVENTS[3:]]
    cf, stub = stack_failure(events, status)
    with stub, pytest.raises(DeployError) as failed:
        deploy_module._wait_for_stack(cf, "telcopulse", waiter)
    assert str(failed.value) == (
        f"stack telcopulse failed: StreamJob: {reason}; Glue refuses the job's Glue "
        f"version here: {first}deploy again with `--parameter GlueVersion=5.1` (see docs/aws.md)"
    )


def test_other_stack_failures_get_no_glue_version_advice():
    events = [
        *STACK_EVENTS[:2],
        ("LakeBucket", "AWS::S3::Bucket", "CREATE_FAILED", "telcopulse-lake already exists"),
    ]
    cf, stub = stack_failure(events, "ROLLBACK_COMPLETE")
    with stub, pytest.raises(DeployError) as failed:
        deploy_module._wait_for_stack(cf, "telcopulse", "stack_create_complete")
    assert (
        str(failed.value) == "stack telcopulse failed: LakeBucket: telcopulse-lake already exists"
    )


# -- status in aws mode ---------------------------------------------------------------------


def test_status_in_aws_mode_shows_the_stream_its_shards_and_the_job_run(
    aws, settings, template, no_docker, monkeypatch
):
    result = deploy(settings, parameters=NETWORK, template=template, log=lambda _m: None)
    for name, value in aws_settings_env(result.outputs, REGION).items():
        monkeypatch.setenv(name, value)
    on_aws = load_settings(home=settings.home)
    run = result.job_run

    checks = {c.name: c for c in collect_status(on_aws, session=aws)}

    assert checks["stream"].ok
    assert checks["stream"].text == (
        f"telcopulse-events at AWS Kinesis ({REGION}): ACTIVE, 1 open shard"
    )
    assert checks["stream"].facts["shards"] == 1
    assert checks["job"].ok
    started = run.started_on.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert checks["job"].text == f"{GLUE_JOB} run {run.run_id} RUNNING, started {started}"
    assert checks["job"].facts == {
        "stack": "telcopulse",
        "job": GLUE_JOB,
        "run_id": run.run_id,
        "state": "RUNNING",
        "started_on": started,
        "error": None,
    }
    # moto's Athena runs no SQL and answers every query with no rows (through pyathena, as
    # a real Athena would answer over an empty lake): nothing committed, so status is down.
    assert not checks["batch"].ok
    assert checks["batch"].text == "none committed yet (is the stream job running?)"
    block = format_status(on_aws, list(checks.values()))
    assert block.splitlines()[:3] == [
        f"mode        aws (stack telcopulse, {REGION}, lake {result.outputs['LakeUri']})",
        f"stream      telcopulse-events at AWS Kinesis ({REGION}): ACTIVE, 1 open shard",
        f"job         {GLUE_JOB} run {run.run_id} RUNNING, started {started}",
    ]


def test_status_in_aws_mode_names_a_job_that_is_not_running(aws, settings, monkeypatch):
    monkeypatch.setenv("TELCOPULSE_REGION", REGION)
    on_aws = load_settings(
        mode="aws",
        home=settings.home,
        lake_uri="s3://lake",
        athena_workgroup="telcopulse",
        athena_database="telcopulse",
    )
    [stream, job] = collect_status(on_aws, session=aws, engine=EmptyEngine())[:2]
    assert not stream.ok
    assert stream.text == (
        f"telcopulse-events at AWS Kinesis ({REGION}): stream telcopulse-events does not exist "
        "yet; starting the stack creates it"
    )
    assert not job.ok
    assert job.text == (
        f"unknown: no stack telcopulse in {REGION} (`telcopulse deploy` creates it; "
        "TELCOPULSE_STACK_NAME names another)"
    )


def test_status_in_aws_mode_shows_a_failed_run_and_its_error(
    aws, settings, template, no_docker, monkeypatch
):
    result = deploy(settings, parameters=NETWORK, template=template, log=lambda _m: None)
    for name, value in aws_settings_env(result.outputs, REGION).items():
        monkeypatch.setenv(name, value)
    on_aws = load_settings(home=settings.home)
    glue = aws.client("glue")
    stub = Stubber(glue)
    day = datetime(2026, 12, 1, tzinfo=UTC)
    older = api_run("jr_1", "STOPPED", StartedOn=day)
    newest = api_run(
        "jr_2",
        "FAILED",
        StartedOn=day + timedelta(hours=2),
        ErrorMessage="An error occurred while calling o110.awaitTermination.\n OutOfMemory",
    )
    stub.add_response("get_job_runs", {"JobRuns": [older, newest]}, {"JobName": GLUE_JOB})
    with stub:
        job = collect_status(on_aws, session=WithGlue(aws, glue), engine=EmptyEngine())[1]
    assert not job.ok
    assert job.text == (
        f"{GLUE_JOB} run jr_2 FAILED, started 2026-12-01T02:00:00Z: An error occurred while "
        "calling o110.awaitTermination. OutOfMemory"
    )


class EmptyEngine:
    """A query engine over a lake with no batch committed."""

    name = "empty"

    def run(self, sql, params=(), *, scope=None):
        import pandas as pd

        return pd.DataFrame({"batch_id": [None]})
