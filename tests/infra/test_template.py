"""Infrastructure as code (AWS deployment): the CloudFormation template and the dashboard image.

Offline and fast: cfn-lint, the template's security properties asserted directly, the Glue
catalog schemas against glue_job/tables.py, and the Dockerfile against what the dashboard
imports. checkov runs too when its tool venv exists (`make lint-infra` creates it).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode
from packaging.requirements import Requirement

from backend.settings import ENV_PREFIX, Settings
from glue_job.metrics import BATCH_METRICS
from glue_job.tables import TABLES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "infra").glob("*.yaml"))
TEMPLATE = ROOT / "infra" / "telcopulse.yaml"
GLUE_RUNTIME = ROOT / "infra" / "glue-5.0-runtime.txt"
DOCKERFILE = ROOT / "Dockerfile"
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"

# Spark type names in glue_job/tables.py -> Glue/Hive type names in the catalog.
GLUE_TYPES = {"long": "bigint"}
ALLOWED_GLUE_TYPES = {
    "string",
    "int",
    "bigint",
    "double",
    "date",
    "timestamp",
    "array<string>",
    "array<date>",
}
# The stream job's per-batch metrics: name -> unit (glue_job/metrics.py publishes them).
BATCH_METRIC_UNITS = {
    "BatchesCommitted": "Count",
    "RecordsRead": "Count",
    "RecordsQuarantined": "Count",
    "Duplicates": "Count",
    "SourceLagSeconds": "Seconds",
    "BatchDurationSeconds": "Seconds",
}
METRICS_NAMESPACE = {"Fn::FindInMap": ["StreamJobNames", "Constants", "MetricsNamespace"]}
LOG_GROUP_PREFIX = {"Fn::FindInMap": ["StreamJobNames", "Constants", "LogGroupPrefix"]}
# AWS::Glue::Job MaintenanceWindow's pattern in the CloudFormation reference.
MAINTENANCE_WINDOW_PATTERN = r"^(Sun|Mon|Tue|Wed|Thu|Fri|Sat):([01]?[0-9]|2[0-3])$"
# Actions that have no resource type in IAM, so "*" is the only Resource they accept.
RESOURCELESS_ACTIONS = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
SPARK_OR_JAVA = re.compile(r"pyspark|py4j|awsglue|openjdk|default-jre|\bjava\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def template() -> dict:
    loaded, errors = decode(str(TEMPLATE))
    assert not errors, errors
    return loaded


def resources_of(template: dict, kind: str) -> dict[str, dict]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def policy_statements(node):
    """Every statement of every policy document anywhere below ``node``."""
    if isinstance(node, dict):
        if "Statement" in node and "Version" in node:
            yield from as_list(node["Statement"])
        for value in node.values():
            yield from policy_statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from policy_statements(value)


def parameter_group(template: dict, name: str) -> str:
    """The label of the console parameter group that lists ``name``."""
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (label,) = [g["Label"]["default"] for g in groups if name in g["Parameters"]]
    return label


def alarms(template: dict) -> dict[str, dict]:
    return {n: a["Properties"] for n, a in resources_of(template, "AWS::CloudWatch::Alarm").items()}


def refs_to(node, name: str) -> bool:
    """Whether ``node`` is ``!Ref name`` or ``!GetAtt name.<attribute>``."""
    if not isinstance(node, dict) or len(node) != 1:
        return False
    if "Ref" in node:
        return node["Ref"] == name
    if "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        target = target.split(".")[0] if isinstance(target, str) else target[0]
        return target == name
    return False


# ------------------------------------------------------------------- linters


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_reports_nothing(path: Path) -> None:
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert [str(m) for m in matches] == []


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov's venv is missing: run `make lint-infra`")
def test_checkov_passes() -> None:
    result = subprocess.run(
        [
            *(str(CHECKOV), "--directory", "infra", "--framework", "cloudformation"),
            *("--skip-download", "--output", "json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    results = (report[0] if isinstance(report, list) else report)["results"]
    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    assert results["passed_checks"]
    assert result.returncode == 0, result.stderr[-2000:]


def yaml_skips(path: Path) -> list[dict]:
    loaded, _ = decode(str(path))
    return [
        skip
        for resource in loaded["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_every_checkov_skip_is_explained(template: dict) -> None:
    for skip in yaml_skips(TEMPLATE):
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"])
        assert len(skip.get("comment", "")) > 20, f"{skip['id']} needs a reason"


# ------------------------------------------------------------------- security properties


def test_every_bucket_is_encrypted_private_versioned_and_tls_only(template: dict) -> None:
    buckets = resources_of(template, "AWS::S3::Bucket")
    policies = resources_of(template, "AWS::S3::BucketPolicy").values()
    assert set(buckets) == {"LogsBucket", "LakeBucket", "ArtifactsBucket", "AthenaResultsBucket"}
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"aws:kms", "AES256"}
        block = props["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert props["VersioningConfiguration"]["Status"] == "Enabled", name
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        if name != "LogsBucket":
            assert refs_to(props["LoggingConfiguration"]["DestinationBucketName"], "LogsBucket")

        own = [p for p in policies if refs_to(p["Properties"]["Bucket"], name)]
        assert len(own) == 1, f"{name} needs exactly one bucket policy"
        policy = own[0]
        denies = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(denies) == 1, f"{name} lacks a TLS-only policy"
        deny = denies[0]
        assert deny["Principal"] == "*"
        assert deny["Action"] == "s3:*"
        covered = json.dumps(deny["Resource"])
        assert f'"{name}.Arn"' in covered or f'["{name}", "Arn"]' in covered
        assert "${" + name + ".Arn}/*" in covered, f"{name}: objects are not covered"


def test_lake_lifecycle_cools_bronze_and_expires_old_versions(template: dict) -> None:
    rules = template["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (bronze,) = [r for r in rules if r.get("Prefix") == "bronze/"]
    assert bronze["Transitions"][0]["StorageClass"] in {"GLACIER_IR", "STANDARD_IA", "GLACIER"}
    assert any("NoncurrentVersionExpiration" in r for r in rules)


def test_stream_is_kms_encrypted_and_on_demand_unless_asked(template: dict) -> None:
    stream = template["Resources"]["EventStream"]["Properties"]
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"
    assert template["Parameters"]["StreamMode"]["Default"] == "ON_DEMAND"
    assert stream["ShardCount"] == {
        "Fn::If": ["IsProvisioned", {"Ref": "ShardCount"}, {"Ref": "AWS::NoValue"}]
    }


def test_no_statement_allows_every_action_on_every_resource(template: dict) -> None:
    statements = list(policy_statements(template["Resources"]))
    assert len(statements) > 20
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = as_list(statement.get("Action", []))
        resources = as_list(statement.get("Resource", []))
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        assert not ("*" in actions and "*" in resources), statement


def test_iam_policies_name_their_actions_and_resources(template: dict) -> None:
    """Stricter for identities than the rule above: no `service:*` action at all, and
    `Resource: "*"` only for actions that cannot name a resource."""
    identities = {
        **resources_of(template, "AWS::IAM::Role"),
        **resources_of(template, "AWS::IAM::ManagedPolicy"),
        **resources_of(template, "AWS::IAM::RolePolicy"),
    }
    assert set(identities) >= {
        "GlueJobRole",
        "BronzeCrawlerRole",
        "DashboardTaskRole",
        "DashboardExecutionRole",
        "GlueJobLogsPolicy",
    }
    for name, identity in identities.items():
        props = identity["Properties"]
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        documents += [props["PolicyDocument"]] if "PolicyDocument" in props else []
        assert "ManagedPolicyArns" not in props, f"{name}: write the permissions out"
        for statement in (s for d in documents for s in as_list(d["Statement"])):
            actions = as_list(statement["Action"])
            assert all(not a.endswith("*") for a in actions), (name, actions)
            if "*" in as_list(statement["Resource"]):
                assert set(actions) <= RESOURCELESS_ACTIONS, (name, actions)


def test_dashboard_task_role_reads_only_what_the_dashboard_shows(template: dict) -> None:
    (policy,) = template["Resources"]["DashboardTaskRole"]["Properties"]["Policies"]
    allowed: dict[str, str] = {}
    for statement in policy["PolicyDocument"]["Statement"]:
        for action in as_list(statement["Action"]):
            allowed[action] = allowed.get(action, "") + json.dumps(statement["Resource"])
    assert set(allowed) == {
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
        "athena:GetWorkGroup",  # whether to send a result location (result reuse)
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetPartition",
        "glue:GetPartitions",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:GetBucketLocation",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kinesis:DescribeStreamSummary",
        "kinesis:ListShards",
    }
    assert "workgroup/${AthenaWorkGroup}" in allowed["athena:StartQueryExecution"]
    assert "workgroup/${AthenaWorkGroup}" in allowed["athena:GetWorkGroup"]
    assert "EventStream" in allowed["kinesis:DescribeStreamSummary"]
    assert "AthenaResultsBucket" in allowed["s3:PutObject"]
    assert "LakeBucket" not in allowed["s3:PutObject"]
    lake_reads = re.findall(r"LakeBucket\.Arn\}/([\w/]+)\*", allowed["s3:GetObject"])
    assert sorted(lake_reads) == [
        "_compactions/",
        "_ops/",
        "_ops_day/",
        "_ops_hour/",
        "_quarantine_day/",
        "_quarantine_hour/",
        "gold/",
        "quarantine/",
    ]


def test_dashboard_is_not_open_to_the_world_by_default(template: dict) -> None:
    cidr = template["Parameters"]["AllowedIngressCidr"]
    assert cidr.get("Default") not in {"0.0.0.0/0", "::/0"}
    rules = [
        rule
        for group in resources_of(template, "AWS::EC2::SecurityGroup").values()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ]
    rules += [
        r["Properties"] for r in resources_of(template, "AWS::EC2::SecurityGroupIngress").values()
    ]
    assert rules
    for rule in rules:
        assert "CidrIpv6" not in rule
        assert rule.get("CidrIp", {"Ref": "AllowedIngressCidr"}) == {"Ref": "AllowedIngressCidr"}
        if "CidrIp" not in rule:
            assert refs_to(rule["SourceSecurityGroupId"], "AlbSecurityGroup")


def test_https_with_a_certificate_and_cognito_sign_in_when_configured(template: dict) -> None:
    resources = template["Resources"]
    https = resources["HttpsListener"]
    assert https["Condition"] == "HasCertificate"
    assert https["Properties"]["Protocol"] == "HTTPS"
    assert https["Properties"]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    use_cognito, with_sign_in, without = https["Properties"]["DefaultActions"]["Fn::If"]
    assert use_cognito == "UseCognito"
    assert [a["Type"] for a in with_sign_in] == ["authenticate-cognito", "forward"]
    assert [a["Type"] for a in without] == ["forward"]
    http_if = resources["HttpListener"]["Properties"]["DefaultActions"]["Fn::If"]
    assert http_if[0] == "HasCertificate"
    assert http_if[1][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    assert template["Conditions"]["UseCognito"]["Fn::And"][0] == {"Condition": "HasCertificate"}


def test_log_groups_keep_logs_for_a_set_time_encrypted(template: dict) -> None:
    groups = resources_of(template, "AWS::Logs::LogGroup")
    assert set(groups) == {"GlueJobErrorLogGroup", "GlueJobOutputLogGroup", "DashboardLogGroup"}
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert refs_to(group["Properties"]["KmsKeyId"], "DataKey")


def test_encryption_everywhere_else(template: dict) -> None:
    resources = template["Resources"]
    assert resources["DataKey"]["Properties"]["EnableKeyRotation"] is True
    assert refs_to(resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"], "DataKey")
    repository = resources["DashboardRepository"]["Properties"]
    assert repository["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert "LifecyclePolicyText" in repository["LifecyclePolicy"]
    config = resources["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "BytesScannedCutoffPerQuery"}
    glue_encryption = resources["GlueSecurityConfiguration"]["Properties"][
        "EncryptionConfiguration"
    ]
    assert glue_encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    container = resources["DashboardTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert container["ReadonlyRootFilesystem"] is True


def test_alarms_watch_iterator_age_and_glue_failures(template: dict) -> None:
    metrics = {a.get("MetricName") for a in alarms(template).values()}
    assert {"GetRecords.IteratorAgeMilliseconds", "glue.driver.aggregate.numFailedTasks"} <= metrics
    rule = template["Resources"]["GlueJobFailedRule"]["Properties"]
    assert rule["EventPattern"]["detail-type"] == ["Glue Job State Change"]
    assert "FAILED" in rule["EventPattern"]["detail"]["state"]
    assert refs_to(rule["Targets"][0]["Arn"], "AlarmTopic")
    assert resources_of(template, "AWS::CloudWatch::Dashboard")


def test_crawler_can_never_rewrite_or_drop_a_table(template: dict) -> None:
    crawler = template["Resources"]["BronzeCrawler"]["Properties"]
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    (target,) = crawler["Targets"]["S3Targets"]
    assert target["Path"] == {"Fn::Sub": "s3://${LakeBucket}/" + TABLES["bronze"].path + "/"}
    assert refs_to(crawler["Role"], "BronzeCrawlerRole")


# ------------------------------------------------------------------- catalog = glue_job/tables.py


def catalog_tables(template: dict) -> dict[str, dict]:
    return {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in resources_of(template, "AWS::Glue::Table").values()
    }


def test_catalog_has_a_table_for_every_layer_but_crawled_bronze(template: dict) -> None:
    # Compacted tables are registered by their files' name; deploy adds the views over them.
    expected = {t.files_name for name, t in TABLES.items() if name != "bronze"}
    assert set(catalog_tables(template)) == expected


@pytest.mark.parametrize("name", sorted(set(TABLES) - {"bronze"}))
def test_catalog_schema_matches_tables_py(template: dict, name: str) -> None:
    table = TABLES[name]
    declared = catalog_tables(template)[table.files_name]
    expected_columns = [{"Name": c, "Type": GLUE_TYPES.get(k, k)} for c, k in table.columns]
    expected_partitions = [
        {"Name": p, "Type": GLUE_TYPES.get(k, k)} for p, k in table.partition_types
    ]

    storage = declared["StorageDescriptor"]
    assert [dict(c) for c in storage["Columns"]] == expected_columns
    assert [dict(p) for p in declared.get("PartitionKeys", [])] == expected_partitions
    assert {c["Type"] for c in expected_columns + expected_partitions} <= ALLOWED_GLUE_TYPES
    assert storage["Location"] == {"Fn::Sub": f"s3://${{LakeBucket}}/{table.path}/"}
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert declared["TableType"] == "EXTERNAL_TABLE"


@pytest.mark.parametrize("name", sorted(set(TABLES) - {"bronze"}))
def test_partition_projection_follows_the_lake_layout(template: dict, name: str) -> None:
    table = TABLES[name]
    declared = catalog_tables(template)[table.files_name]
    params = declared["Parameters"]
    projected = {
        k.split(".")[1] for k in params if k.startswith("projection.") and k.count(".") >= 2
    }
    # Only dates are projected: the commit=N level below them is read as part of the date's
    # prefix, and every row carries its commit_id.
    assert projected == {p for p, _ in table.partition_types}
    assert "commit_id" in {c["Name"] for c in declared["StorageDescriptor"]["Columns"]}
    if not table.partitions:
        assert "projection.enabled" not in params
        return
    assert params["projection.enabled"] == "true"
    levels = [f"{p}=${{!{p}}}" for p in table.partitions]
    expected = "/".join([f"s3://${{LakeBucket}}/{table.path}", *levels])
    assert params["storage.location.template"] == {"Fn::Sub": expected}
    for column, kind in table.partition_types:
        if kind == "int":  # gold's hour of the day
            assert params[f"projection.{column}.type"] == "integer"
            assert params[f"projection.{column}.range"] == "0,23"
            continue
        assert params[f"projection.{column}.type"] == "date"
        assert params[f"projection.{column}.format"] == "yyyy-MM-dd"
        if column.endswith("_month"):  # the day rollups: the first of each month
            assert params[f"projection.{column}.interval.unit"] == "MONTHS"
            parts = params[f"projection.{column}.range"]["Fn::Join"][1]
            assert parts[-1] == "-01,NOW"
            continue
        assert params[f"projection.{column}.range"]["Fn::Sub"].endswith(",NOW")


# ------------------------------------------------------------------- settings wiring


def test_glue_job_runs_glue_5_streaming_with_settings_as_arguments(template: dict) -> None:
    job = template["Resources"]["StreamJob"]["Properties"]
    assert job["GlueVersion"] == {"Ref": "GlueVersion"}
    assert template["Parameters"]["GlueVersion"]["Default"] == "5.0"
    assert job["Command"]["Name"] == "gluestreaming"
    assert job["WorkerType"] == {"Ref": "GlueWorkerType"}
    assert job["NumberOfWorkers"] == {"Ref": "GlueNumberOfWorkers"}
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    args = job["DefaultArguments"]
    assert args["--enable-metrics"] == "true"
    modules = args["--additional-python-modules"]["Fn::Sub"].split(",")
    assert modules[0].startswith("s3://${ArtifactsBucket}/")
    # What glue_job imports beyond Glue's own pyspark, pandas, numpy, pyarrow and boto3.
    assert modules[1:] == [f"{name}=={metadata.version(name)}" for name in ("orjson", "h3")]
    assert args["--checkpoint_location"]["Fn::Sub"].startswith("s3://")
    settings_args = {"stream_name", "lake_uri", "trigger_seconds", "max_records_per_shard"}
    settings_args |= {"dedup_horizon_hours", "region"}
    settings_args |= {"compact_after_batches", "compaction_grace_seconds"}
    assert settings_args <= {a.removeprefix("--") for a in args}
    assert settings_args <= set(Settings.model_fields), "each maps onto a TELCOPULSE_* setting"


def test_dashboard_container_gets_valid_aws_settings(template: dict) -> None:
    (container,) = template["Resources"]["DashboardTaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["TELCOPULSE_MODE"] == "aws"
    for name in env:
        assert name.startswith(ENV_PREFIX)
        assert name.removeprefix(ENV_PREFIX).lower() in Settings.model_fields, name
    # The variables aws mode requires are all there.
    for required in ("LAKE_URI", "ATHENA_WORKGROUP", "ATHENA_DATABASE", "REGION"):
        assert ENV_PREFIX + required in env
    assert container["PortMappings"] == [{"ContainerPort": 8501, "Protocol": "tcp"}]
    health = " ".join(container["HealthCheck"]["Command"])
    assert "/_stcore/health" in health


def test_outputs_tell_a_user_everything_deploy_and_the_settings_need(template: dict) -> None:
    assert set(template["Outputs"]) >= {
        "StreamName",
        "StreamArn",
        "LakeBucketName",
        "LakeUri",
        "ArtifactsBucketName",
        "GlueJobName",
        "GlueDatabaseName",
        "AthenaWorkGroupName",
        "AthenaOutputLocation",
        "EcrRepositoryUri",
        "DashboardUrl",
    }
    for name, parameter in template["Parameters"].items():
        assert len(parameter.get("Description", "")) > 20, f"{name} needs a description"


# ------------------------------------------------------------------- Glue version, logs, trust


def test_glue_version_is_a_parameter_limited_to_python_3_11_runtimes(template: dict) -> None:
    parameter = template["Parameters"]["GlueVersion"]
    # 5.0 is the runtime the code is tested on; 5.1 the fallback; 4.0 runs Python 3.10.
    assert parameter["Type"] == "String"
    assert parameter["AllowedValues"] == ["5.0", "5.1"]
    assert parameter["Default"] == "5.0"
    assert "--parameter GlueVersion=5.1" in parameter["Description"]
    assert "docs/aws.md" in parameter["Description"]
    assert parameter_group(template, "GlueVersion") == "Glue streaming job"
    job = template["Resources"]["StreamJob"]["Properties"]
    assert job["GlueVersion"] == {"Ref": "GlueVersion"}


def resolve_name(template: dict, node) -> str:
    """The value of a name built with !Sub, !FindInMap and !Ref, with default parameters."""
    if isinstance(node, str):
        return node
    if "Fn::FindInMap" in node:
        mapping, top, key = node["Fn::FindInMap"]
        return template["Mappings"][mapping][top][key]
    if "Ref" in node:
        name = node["Ref"]
        if name in template["Parameters"]:
            return str(template["Parameters"][name]["Default"])
        props = template["Resources"][name]["Properties"]
        physical = {"AWS::IAM::Role": "RoleName", "AWS::Glue::SecurityConfiguration": "Name"}
        return resolve_name(template, props[physical[template["Resources"][name]["Type"]]])
    body, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in variables:
            return resolve_name(template, variables[name])
        return resolve_name(template, {"Ref": name})

    return re.sub(r"\$\{([\w:]+)\}", value, body)


def test_glue_5_logs_go_to_log_groups_the_stack_creates(template: dict) -> None:
    resources = template["Resources"]
    job = resources["StreamJob"]
    args = job["Properties"]["DefaultArguments"]
    # Glue 5.0 deprecates the continuous-logging arguments.
    assert not [a for a in args if a.startswith(("--enable-continuous", "--continuous-log"))]
    assert args["--custom-logGroup-prefix"] == LOG_GROUP_PREFIX
    assert "--custom-logStream-prefix" not in args  # streams keep the job run id
    # The security configuration encrypts CloudWatch Logs, which puts <name>-role/<role>
    # into the group names.
    assert refs_to(job["Properties"]["SecurityConfiguration"], "GlueSecurityConfiguration")
    encryption = resources["GlueSecurityConfiguration"]["Properties"]["EncryptionConfiguration"]
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert "RoleName" in resources["GlueJobRole"]["Properties"]
    for kind in ("error", "output"):
        group = resources[f"GlueJob{kind.title()}LogGroup"]
        name = group["Properties"]["LogGroupName"]
        assert name == {
            "Fn::Sub": [
                "${Prefix}/${GlueSecurityConfiguration}-role/${GlueJobRole}/" + kind,
                {"Prefix": LOG_GROUP_PREFIX},
            ]
        }
        assert resolve_name(template, name) == (
            f"/aws-glue/telcopulse/telcopulse-glue-role/telcopulse-glue-stream-job/{kind}"
        )
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert refs_to(group["Properties"]["KmsKeyId"], "DataKey")
    assert set(job["DependsOn"]) == {
        "GlueJobErrorLogGroup",
        "GlueJobOutputLogGroup",
        "GlueJobLogsPolicy",
    }
    # The old continuous-logging group is gone, and nothing still points at it.
    assert "GlueJobLogGroup" not in resources
    assert "GlueJobLogGroup" not in json.dumps(template)


def test_job_role_writes_logs_to_its_two_log_groups_only(template: dict) -> None:
    resources = template["Resources"]
    documents = [p["PolicyDocument"] for p in resources["GlueJobRole"]["Properties"]["Policies"]]
    for policy in resources_of(template, "AWS::IAM::RolePolicy").values():
        if refs_to(policy["Properties"]["RoleName"], "GlueJobRole"):
            documents.append(policy["Properties"]["PolicyDocument"])
    logs = [
        s
        for d in documents
        for s in as_list(d["Statement"])
        if any(a.startswith("logs:") for a in as_list(s["Action"]))
    ]
    assert len(logs) == 1
    (statement,) = logs
    assert set(statement["Action"]) == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:AssociateKmsKey",  # without it Glue turns logging off (encrypted logs)
    }
    group_arn = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
    assert statement["Resource"] == [
        {"Fn::Sub": group_arn + "${GlueJobErrorLogGroup}"},
        {"Fn::Sub": group_arn + "${GlueJobErrorLogGroup}:*"},
        {"Fn::Sub": group_arn + "${GlueJobOutputLogGroup}"},
        {"Fn::Sub": group_arn + "${GlueJobOutputLogGroup}:*"},
    ]


@pytest.mark.parametrize("role", ["GlueJobRole", "BronzeCrawlerRole"])
def test_glue_roles_use_the_documented_trust_policy(template: dict, role: str) -> None:
    # No aws:SourceAccount: AWS does not document that Glue sends it (docs/aws.md).
    (statement,) = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    assert statement == {
        "Effect": "Allow",
        "Principal": {"Service": "glue.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def test_stream_job_gets_the_partitions_kinesis_endpoint(template: dict) -> None:
    args = template["Resources"]["StreamJob"]["Properties"]["DefaultArguments"]
    assert args["--kinesis_endpoint_url"] == {
        "Fn::Sub": "https://kinesis.${AWS::Region}.${AWS::URLSuffix}"
    }
    assert "amazonaws.com" not in json.dumps(args)


def test_maintenance_window_is_optional_and_in_aws_format(template: dict) -> None:
    parameter = template["Parameters"]["StreamMaintenanceWindow"]
    assert parameter["Default"] == ""
    # The documented pattern, or nothing.
    assert parameter["AllowedPattern"] == "^(|" + MAINTENANCE_WINDOW_PATTERN[1:-1] + ")$"
    accepted = ["", "Sun:03", "Sat:23", "Mon:0", "Wed:19"]
    rejected = ["sun:03", "Sun:24", "Sunday:03", "Sun", "Sun:3am", " "]
    assert all(re.fullmatch(parameter["AllowedPattern"], w) for w in accepted)
    assert not any(re.fullmatch(parameter["AllowedPattern"], w) for w in rejected)
    assert parameter_group(template, "StreamMaintenanceWindow") == "Glue streaming job"
    assert template["Conditions"]["HasMaintenanceWindow"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "StreamMaintenanceWindow"}, ""]}]
    }
    job = template["Resources"]["StreamJob"]["Properties"]
    assert job["MaintenanceWindow"] == {
        "Fn::If": [
            "HasMaintenanceWindow",
            {"Ref": "StreamMaintenanceWindow"},
            {"Ref": "AWS::NoValue"},
        ]
    }


def runtime_pins() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in GLUE_RUNTIME.read_text().splitlines()]
    pins = [Requirement(line) for line in lines if line]
    return {r.name: str(r.specifier) for r in pins}


@pytest.mark.parametrize("name", ["orjson", "h3"])
def test_added_module_pins_match_the_glue_runtime_file(template: dict, name: str) -> None:
    args = template["Resources"]["StreamJob"]["Properties"]["DefaultArguments"]
    modules = args["--additional-python-modules"]["Fn::Sub"].split(",")
    (module,) = [Requirement(m) for m in modules if m.startswith(f"{name}==")]
    assert str(module.specifier) == runtime_pins()[name]
    assert runtime_pins()[name].startswith("==")


# ------------------------------------------------------------------- alarms and metrics


def test_every_alarm_notifies_the_alarm_topic(template: dict) -> None:
    found = alarms(template)
    assert len(found) >= 7
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm.get("OKActions", [{"Ref": "AlarmTopic"}]) == [{"Ref": "AlarmTopic"}], name
        # DataKey lets alarms named <ProjectName>-* use the topic's key.
        assert alarm["AlarmName"]["Fn::Sub"].startswith("${ProjectName}-"), name


def test_only_this_stacks_alarms_and_no_conditioned_eventbridge_use_the_topic_key(
    template: dict,
) -> None:
    statements = template["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    publishers = {
        s["Sid"]: s
        for s in statements
        if {"kms:Decrypt", "kms:GenerateDataKey*"} == set(as_list(s["Action"]))
    }
    assert set(publishers) == {
        "AlarmsPublishToTheEncryptedTopic",
        "EventsPublishToTheEncryptedTopic",
    }
    alarms_statement = publishers["AlarmsPublishToTheEncryptedTopic"]
    assert alarms_statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms_statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}"
                ":alarm:${ProjectName}-*"
            }
        },
    }
    # The SNS guide: source conditions "not supported for EventBridge-to-encrypted topics".
    events_statement = publishers["EventsPublishToTheEncryptedTopic"]
    assert events_statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert "Condition" not in events_statement
    topic_policy = template["Resources"]["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]
    (events_publish,) = [
        s
        for s in topic_policy["Statement"]
        if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert refs_to(events_publish["Condition"]["ArnEquals"]["aws:SourceArn"], "GlueJobFailedRule")


def test_iterator_age_alarm_fires_when_nobody_reads_the_stream(template: dict) -> None:
    alarm = alarms(template)["IteratorAgeAlarm"]
    assert alarm["MetricName"] == "GetRecords.IteratorAgeMilliseconds"
    # A stopped or never-started job makes no GetRecords calls, hence no data points.
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}]


def test_job_publishes_its_batch_metrics_in_one_namespace(template: dict) -> None:
    assert template["Mappings"]["StreamJobNames"]["Constants"]["MetricsNamespace"] == "TelcoPulse"
    args = template["Resources"]["StreamJob"]["Properties"]["DefaultArguments"]
    assert args["--metrics_namespace"] == METRICS_NAMESPACE
    (policy,) = template["Resources"]["GlueJobRole"]["Properties"]["Policies"]
    (metrics,) = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Action"] == "cloudwatch:PutMetricData"
    ]
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": ["Glue", METRICS_NAMESPACE]}
    }
    # The names and units the job publishes (glue_job/metrics.py).
    assert {name: unit for name, (_, unit) in BATCH_METRICS.items()} == BATCH_METRIC_UNITS


def custom_metric_stats(template: dict) -> list[tuple[str, dict]]:
    """(alarm, metric) for every alarm metric in the job's namespace."""
    found = []
    for name, alarm in alarms(template).items():
        if "MetricName" in alarm:
            found.append((name, alarm))
        for query in alarm.get("Metrics", []):
            if "MetricStat" in query:
                found.append((name, query["MetricStat"]["Metric"]))
    return [(n, m) for n, m in found if m["Namespace"] == METRICS_NAMESPACE]


def test_batch_metric_alarms_name_the_job_and_published_metrics(template: dict) -> None:
    used = custom_metric_stats(template)
    assert {m["MetricName"] for _, m in used} == {
        "BatchesCommitted",
        "RecordsQuarantined",
        "RecordsRead",
    }
    for name, metric in used:
        assert metric["MetricName"] in BATCH_METRIC_UNITS, name
        assert metric["Dimensions"] == [{"Name": "JobName", "Value": {"Ref": "StreamJob"}}], name


def test_no_batch_alarm_fires_when_nothing_is_committed(template: dict) -> None:
    alarm = alarms(template)["NoBatchCommittedAlarm"]
    assert alarm["Namespace"] == METRICS_NAMESPACE
    assert alarm["MetricName"] == "BatchesCommitted"
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] == 60
    assert alarm["EvaluationPeriods"] == {"Ref": "NoBatchAlarmMinutes"}
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["TreatMissingData"] == "breaching"  # a stopped job publishes nothing
    assert "no events arrive" in alarm["AlarmDescription"]
    parameter = template["Parameters"]["NoBatchAlarmMinutes"]
    assert parameter["Default"] == 15
    # CloudWatch: with periods under an hour, at most a day of them.
    assert parameter["MinValue"] >= 1
    assert parameter["MaxValue"] * alarm["Period"] <= 86_400
    assert parameter_group(template, "NoBatchAlarmMinutes") == "Monitoring"


def test_quarantine_share_alarm_divides_quarantined_by_read_records(template: dict) -> None:
    alarm = alarms(template)["QuarantineShareHighAlarm"]
    # A metric-math alarm names its metrics only inside Metrics.
    assert not {"MetricName", "Namespace", "Statistic", "Period", "Dimensions"} & set(alarm)
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    (returned,) = [q for q in queries.values() if q["ReturnData"]]
    numerator, denominator = (part.strip() for part in returned["Expression"].split("/"))
    stats = {i: q["MetricStat"] for i, q in queries.items() if "MetricStat" in q}
    assert stats[numerator]["Metric"]["MetricName"] == "RecordsQuarantined"
    assert stats[denominator]["Metric"]["MetricName"] == "RecordsRead"
    assert {(s["Period"], s["Stat"]) for s in stats.values()} == {(300, "Sum")}
    assert not any(q["ReturnData"] for q in queries.values() if "MetricStat" in q)
    assert alarm["Threshold"] == {"Ref": "QuarantineShareAlarm"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    parameter = template["Parameters"]["QuarantineShareAlarm"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (0.05, 0, 1)
    assert parameter_group(template, "QuarantineShareAlarm") == "Monitoring"


@pytest.mark.parametrize(
    "metric", ["WriteProvisionedThroughputExceeded", "PutRecords.FailedRecords"]
)
def test_stream_write_problems_raise_an_alarm(template: dict, metric: str) -> None:
    (alarm,) = [a for a in alarms(template).values() if a.get("MetricName") == metric]
    assert alarm["Namespace"] == "AWS/Kinesis"
    assert alarm["Dimensions"] == [{"Name": "StreamName", "Value": {"Ref": "EventStream"}}]
    assert alarm["Statistic"] == "Sum"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"  # no writes, nothing rejected


def dashboard_widgets(template: dict) -> tuple[list[dict], dict]:
    body, variables = template["Resources"]["OpsDashboard"]["Properties"]["DashboardBody"][
        "Fn::Sub"
    ]
    # Numbers are substituted unquoted, names inside strings: both become valid JSON.
    text = re.sub(r'(?<!")\$\{[^}]+\}(?!")', "0", body)
    text = re.sub(r"\$\{([^}]+)\}", r"\1", text)
    return json.loads(text)["widgets"], variables


def test_ops_dashboard_charts_every_batch_metric(template: dict) -> None:
    widgets, variables = dashboard_widgets(template)
    assert variables["MetricsNamespace"] == METRICS_NAMESPACE
    charted = {
        row[1]
        for widget in widgets
        for row in widget["properties"]["metrics"]
        if row[0] == "MetricsNamespace"
    }
    assert charted == set(BATCH_METRIC_UNITS)
    for widget in widgets:
        for row in widget["properties"]["metrics"]:
            if row[0] == "MetricsNamespace":
                assert row[2:4] == ["JobName", "StreamJob"]
    # No two widgets overlap on the 24-column grid.
    cells = [
        (w["x"] + dx, w["y"] + dy)
        for w in widgets
        for dx in range(w["width"])
        for dy in range(w["height"])
    ]
    assert len(cells) == len(set(cells))


# ------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def pinned_requirements() -> dict[str, str]:
    (run,) = [
        args for op, args in dockerfile_instructions() if op == "RUN" and "pip install" in args
    ]
    pins = [Requirement(token) for token in shlex.split(run) if "==" in token]
    return {metadata.distribution(r.name).metadata["Name"].lower(): str(r.specifier) for r in pins}


def test_dockerfile_is_slim_non_root_and_healthchecked() -> None:
    instructions = dockerfile_instructions()
    (base,) = [args for op, args in instructions if op == "FROM"]
    assert base == "python:3.11-slim"
    users = [args for op, args in instructions if op == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    (health,) = [args for op, args in instructions if op == "HEALTHCHECK"]
    assert "http://localhost:8501/_stcore/health" in health
    assert ("EXPOSE", "8501") in instructions
    (cmd,) = [json.loads(args) for op, args in instructions if op == "CMD"]
    assert cmd[:3] == ["streamlit", "run", "Home.py"]
    assert {"--server.headless=true", "--server.address=0.0.0.0"} <= set(cmd)
    assert not SPARK_OR_JAVA.search(" ".join(args for _, args in instructions))


def test_dockerfile_pins_satisfy_pyproject() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    for name, spec in pinned_requirements().items():
        version = spec.removeprefix("==")
        assert name in declared, f"{name} is not a project dependency"
        assert declared[name].specifier.contains(version), f"{name}=={version} vs {declared[name]}"


def dashboard_imports() -> tuple[set[Path], set[str]]:
    """Local files and third-party top-level modules the dashboard reaches from its entry points."""
    local = {"backend", "dashboard", "glue_job"}
    todo = [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py"))]
    files: set[Path] = set()
    third_party: set[str] = set()
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] not in local:
                    if parts[0] not in sys.stdlib_module_names:
                        third_party.add(parts[0])
                    continue
                for depth in range(1, len(parts) + 1):
                    base = ROOT.joinpath(*parts[:depth])
                    for candidate in (base / "__init__.py", base.with_suffix(".py")):
                        if candidate.exists():
                            todo.append(candidate)
    return files, third_party


def test_image_carries_every_module_the_dashboard_imports_and_no_spark() -> None:
    copied: list[str] = []
    for op, args in dockerfile_instructions():
        if op == "COPY":
            copied += shlex.split(args)[:-1]
    files, third_party = dashboard_imports()
    needed = {str(f.relative_to(ROOT)) for f in files} | {"glue_job/operator_aliases.csv"}
    for path in needed:
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), (
            f"the image lacks {path}: add it to the Dockerfile's COPY lines"
        )
    assert not {"pyspark", "py4j", "awsglue"} & third_party

    # Each imported distribution is pinned, or comes with a pinned one.
    pinned = set(pinned_requirements())
    provided = set(pinned)
    todo = list(pinned)
    while todo:
        for requirement in metadata.requires(todo.pop()) or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                name = parsed.name.lower()
                if name not in provided:
                    provided.add(name)
                    todo.append(name)
    owners = metadata.packages_distributions()
    for module in third_party:
        assert {d.lower() for d in owners[module]} & provided, (
            f"the image does not install {module}"
        )


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "node_modules", ".telcopulse", "tests", "bench", "docs", ".git"} <= ignored
