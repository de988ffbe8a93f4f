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
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import decode
from moto import mock_aws

from backend import deploy as deploy_module
from backend.catalog import current_views
from backend.cli import main as cli_main
from backend.deploy import (
    ENTRY_SCRIPT,
    MAIN_TEMPLATE,
    OUTPUT_SETTINGS,
    PARAMETER_OPTIONS,
    SCRIPT_KEY,
    DeployError,
    aws_settings_env,
    deploy,
    destroy,
    ensure_stack,
    format_summary,
)
from backend.settings import ENV_PREFIX, Settings, load_settings

REGION = "eu-west-1"
NETWORK = {"VpcId": "vpc-0123456789abcdef0", "AllowedIngressCidr": "203.0.113.0/24"}
WHEEL_KEY = "glue/telcopulse_glue_job-0.1.0-py3-none-any.whl"
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
Outputs:
  StreamName: {Value: !Ref EventStream}
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
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        # TEST_TEMPLATE names this workgroup in its outputs; the views are created in it.
        session.client("athena").create_work_group(Name="telcopulse")
        yield session


@pytest.fixture
def no_docker(monkeypatch):
    real_which = deploy_module.shutil.which
    monkeypatch.setattr(
        deploy_module.shutil, "which", lambda cmd: None if cmd == "docker" else real_which(cmd)
    )


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
    result = deploy(settings, parameters=NETWORK, template=template, log=messages.append)

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

    summary = format_summary(result, settings)
    assert "dashboard: http://telcopulse-dashboard.eu-west-1.elb.amazonaws.com" in summary
    assert "no image pushed yet" in summary
    assert "aws glue start-job-run --region eu-west-1 --job-name telcopulse-stream" in summary
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


def test_second_deploy_without_changes_is_a_no_op(aws, settings, template, no_docker):
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
    assert format_summary(again, settings).startswith(
        "stack telcopulse is up to date: nothing to deploy\n"
    )


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
    assert deploy_module.describe_stack(aws.client("cloudformation"), "telcopulse") is None

    with pytest.raises(DeployError, match="ShardCout: not a parameter of the template"):
        deploy(settings, parameters={**NETWORK, "ShardCout": "2"}, template=template)


def test_destroy_asks_then_empties_the_buckets_and_deletes_both_stacks(
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

    with pytest.raises(DeployError, match=r"add --yes to confirm$") as refused:
        destroy(settings, yes=False)
    assert lake in str(refused.value)
    assert versions(aws, lake, "silver/") == 2  # nothing touched

    assert destroy(settings, yes=True, log=lambda _m: None) == [
        "telcopulse",
        "telcopulse-bootstrap",
    ]
    cf = aws.client("cloudformation")
    assert deploy_module.describe_stack(cf, "telcopulse") is None
    assert deploy_module.describe_stack(cf, "telcopulse-bootstrap") is None
    assert s3.list_buckets()["Buckets"] == []

    with pytest.raises(DeployError, match="nothing to destroy"):
        destroy(settings, yes=True)


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
    result = deploy(settings, parameters=network, template=MAIN_TEMPLATE, log=lambda _m: None)

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
    loaded, errors = decode(str(MAIN_TEMPLATE))
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
