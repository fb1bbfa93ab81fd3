"""The detection stack's template: every property issue #3 promises."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from codewatch.pattern import event_pattern
from stacks.config import CodewatchConfig
from stacks.publishing import DEFAULT_PRODUCT_ARN
from tests.infrastructure.conftest import REPO_ROOT, as_list, one, resources, statements

DEFAULT = CodewatchConfig()


def ref_id(value: Any) -> str:
    """The logical ID a Ref/GetAtt points at."""
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


def queue_ids(template: dict[str, Any]) -> dict[str, str]:
    """Map a short name (Queue, QueueDlq, TargetDlq, FailureQueue) to its logical ID."""
    names = {}
    for logical_id in resources(template, "AWS::SQS::Queue"):
        for short in ("IngestQueueDlq", "IngestTargetDlq", "PublishingFailureQueue", "IngestQueue"):
            if logical_id.startswith(short) and short not in names:
                names[short] = logical_id
                break
    return names


# --- ingest ---


def test_rule_carries_exactly_the_pattern(detection: dict[str, Any]) -> None:
    _, rule = one(detection, "AWS::Events::Rule")
    assert rule["Properties"]["EventPattern"] == event_pattern(DEFAULT.principals)
    assert "EventBusName" not in rule["Properties"]  # the default bus
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.lambda"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["lambda.amazonaws.com"],
            "eventName": [{"prefix": "UpdateFunctionCode"}],
            "errorCode": [{"exists": False}],
            "userIdentity": {"type": [{"anything-but": ["AWSService"]}]},
        },
    }


def test_rule_target_is_the_queue_with_retry_policy_and_dlq(detection: dict[str, Any]) -> None:
    _, rule = one(detection, "AWS::Events::Rule")
    (target,) = rule["Properties"]["Targets"]
    ids = queue_ids(detection)
    assert ref_id(target["Arn"]) == ids["IngestQueue"]
    assert ref_id(target["DeadLetterConfig"]["Arn"]) == ids["IngestTargetDlq"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def test_queues_are_kms_encrypted_with_the_data_key(detection: dict[str, Any]) -> None:
    key_id, _ = one(detection, "AWS::KMS::Key", "DataKey")
    queues = resources(detection, "AWS::SQS::Queue")
    assert len(queues) == 4
    for queue in queues.values():
        assert ref_id(queue["Properties"]["KmsMasterKeyId"]) == key_id


def test_every_queue_is_ssl_only(detection: dict[str, Any]) -> None:
    denied = set()
    for policy in resources(detection, "AWS::SQS::QueuePolicy").values():
        for stmt in policy["Properties"]["PolicyDocument"]["Statement"]:
            if stmt["Effect"] == "Deny" and stmt.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert stmt["Action"] == "sqs:*"
                denied.update(ref_id(q) for q in policy["Properties"]["Queues"])
    assert denied == set(resources(detection, "AWS::SQS::Queue"))


def test_queue_redrive_and_visibility_timeout(detection: dict[str, Any]) -> None:
    ids = queue_ids(detection)
    queue = detection["Resources"][ids["IngestQueue"]]["Properties"]
    assert ref_id(queue["RedrivePolicy"]["deadLetterTargetArn"]) == ids["IngestQueueDlq"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    _, aggregator = one(detection, "AWS::Lambda::Function", "Aggregator")
    assert queue["VisibilityTimeout"] >= 6 * aggregator["Properties"]["Timeout"]


def test_eventbridge_may_use_the_queue_key_for_this_account_only(detection: dict[str, Any]) -> None:
    _, key = one(detection, "AWS::KMS::Key", "DataKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    events_stmts = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert events_stmts
    for stmt in events_stmts:
        assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(stmt["Action"]))
        assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_no_central_bus_without_organization(detection: dict[str, Any]) -> None:
    assert not resources(detection, "AWS::Events::EventBus")
    assert not resources(detection, "AWS::Events::EventBusPolicy")


# --- aggregation ---


def test_table(detection: dict[str, Any]) -> None:
    key_id, _ = one(detection, "AWS::KMS::Key", "DataKey")
    _, table = one(detection, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert ref_id(props["SSESpecification"]["KMSMasterKeyId"]) == key_id
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    return one(template, "AWS::Lambda::Function", name)[1]["Properties"]


POWERTOOLS_PIN = re.search(
    r"^aws-lambda-powertools==(\S+)$", (REPO_ROOT / "requirements-dev.txt").read_text(encoding="utf-8"), re.M
).group(1)


def test_functions_runtime_layer_and_limits(detection: dict[str, Any]) -> None:
    for name, handler in (
        ("Aggregator", "aggregator.handler.lambda_handler"),
        ("Publisher", "publisher.handler.lambda_handler"),
    ):
        fn = _function(detection, name)
        assert fn["Handler"] == handler
        assert fn["Runtime"] == "python3.13"
        assert fn["Architectures"] == ["arm64"]
        assert fn["MemorySize"] > 0
        assert fn["Timeout"] > 0
        assert fn["TracingConfig"] == {"Mode": "Active"}
        (layer,) = fn["Layers"]
        parameter = detection["Parameters"][layer["Ref"]]
        assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
        assert parameter["Default"] == f"/aws/service/powertools/python/arm64/python3.13/{POWERTOOLS_PIN}"


def test_layer_is_the_powertools_release_the_tests_run() -> None:
    """The deployed layer and the locally tested library are one release: cdk.json follows requirements-dev."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    assert context["powertools_version"] == POWERTOOLS_PIN


def test_both_functions_share_one_asset(detection: dict[str, Any]) -> None:
    keys = {json.dumps(_function(detection, n)["Code"], sort_keys=True) for n in ("Aggregator", "Publisher")}
    assert len(keys) == 1


def test_asset_excludes_caches_and_tests(default_synth: Any) -> None:
    (asset_dir,) = [p for p in default_synth.outdir.iterdir() if p.is_dir() and p.name.startswith("asset.")]
    files = [p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*") if p.is_file()]
    assert "codewatch/pattern.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or "egg-info" in f or "/tests/" in f]


def test_aggregator_environment_is_the_contract(detection: dict[str, Any]) -> None:
    env = _function(detection, "Aggregator")["Environment"]["Variables"]
    table_id, _ = one(detection, "AWS::DynamoDB::Table")
    assert env == {
        "TABLE_NAME": {"Ref": table_id},
        "ALLOWLIST_PARAMETER": "/codewatch/allowlist",
        "ALLOWLIST_CACHE_SECONDS": "300",
        "WINDOW_MINUTES": "60",
        "RETENTION_DAYS": "30",
        "PRINCIPAL_TYPES": "default",
        "MAX_RECEIVE_COUNT": "5",
        "POWERTOOLS_SERVICE_NAME": "codewatch",
        "POWERTOOLS_METRICS_NAMESPACE": "Codewatch",
    }
    # The aggregator fails open on the queue's last delivery: it must know which one that is.
    (queue,) = [q for q in resources(detection, "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"]]
    assert env["MAX_RECEIVE_COUNT"] == str(queue["Properties"]["RedrivePolicy"]["maxReceiveCount"])


def test_aggregator_environment_is_accepted_by_the_handler(detection: dict[str, Any]) -> None:
    """The handler's own settings parser takes what the template sets (e.g. no 0-second cache)."""
    settings = pytest.importorskip("aggregator.settings")
    env = dict(_function(detection, "Aggregator")["Environment"]["Variables"], TABLE_NAME="codewatch-windows")
    parsed = settings.Settings.from_environ(env)
    assert parsed.window_seconds == 3600
    assert parsed.allowlist_parameter == "/codewatch/allowlist"


def test_publisher_environment_is_the_contract(detection: dict[str, Any]) -> None:
    env = _function(detection, "Publisher")["Environment"]["Variables"]
    assert env == {"POWERTOOLS_SERVICE_NAME": "codewatch", "POWERTOOLS_METRICS_NAMESPACE": "Codewatch"}


def _mapping(template: dict[str, Any], function_name: str) -> dict[str, Any]:
    fn_id, _ = one(template, "AWS::Lambda::Function", function_name)
    (mapping,) = [
        m["Properties"]
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    return mapping


def test_sqs_event_source(detection: dict[str, Any]) -> None:
    mapping = _mapping(detection, "Aggregator")
    assert ref_id(mapping["EventSourceArn"]) == queue_ids(detection)["IngestQueue"]
    assert mapping["BatchSize"] == 100
    assert mapping["MaximumBatchingWindowInSeconds"] == 5
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_stream_event_source(detection: dict[str, Any]) -> None:
    mapping = _mapping(detection, "Publisher")
    table_id, _ = one(detection, "AWS::DynamoDB::Table")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == 100
    assert mapping["MaximumBatchingWindowInSeconds"] == 5
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 5
    assert mapping["MaximumRecordAgeInSeconds"] == 86400
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (flt,) = mapping["FilterCriteria"]["Filters"]
    assert json.loads(flt["Pattern"]) == {"eventName": ["INSERT", "MODIFY"]}
    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
    assert ref_id(destination) == queue_ids(detection)["PublishingFailureQueue"]


def test_log_groups_are_encrypted_with_retention_and_used(detection: dict[str, Any]) -> None:
    logs_key_id, logs_key = one(detection, "AWS::KMS::Key", "LogsKey")
    groups = resources(detection, "AWS::Logs::LogGroup")
    assert len(groups) == 2
    for group in groups.values():
        assert ref_id(group["Properties"]["KmsKeyId"]) == logs_key_id
        assert group["Properties"]["RetentionInDays"] == 365
    for name in ("Aggregator", "Publisher"):
        assert ref_id(_function(detection, name)["LoggingConfig"]["LogGroup"]) in groups
    (logs_stmt,) = [
        s
        for s in logs_key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid", "").startswith("AllowCloudWatchLogs")
    ]
    assert logs_stmt["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert "kms:EncryptionContext:aws:logs:arn" in logs_stmt["Condition"]["ArnLike"]
    assert logs_key["Properties"]["EnableKeyRotation"] is True


# --- IAM ---


def _role_statements(template: dict[str, Any], function_name: str) -> list[dict[str, Any]]:
    fn = _function(template, function_name)
    role_id = ref_id(fn["Role"])
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    role = template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, "no managed policies: every permission is scoped here"
    return found


def _actions(stmts: list[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for stmt in stmts:
        for action in as_list(stmt["Action"]):
            out.setdefault(action, []).extend(as_list(stmt["Resource"]))
    return out


def test_aggregator_permissions_are_exactly_these(detection: dict[str, Any]) -> None:
    actions = _actions(_role_statements(detection, "Aggregator"))
    table_id, _ = one(detection, "AWS::DynamoDB::Table")
    assert actions["dynamodb:UpdateItem"] == [{"Fn::GetAtt": [table_id, "Arn"]}]
    (param_arn,) = actions["ssm:GetParameter"]
    assert param_arn["Fn::Join"][1][-1] == ":parameter/codewatch/allowlist"
    assert set(actions) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:UpdateItem",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "ssm:GetParameter",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    assert "cloudwatch:PutMetricData" not in actions  # Powertools metrics are EMF log lines


def test_publisher_permissions_are_exactly_these(detection: dict[str, Any]) -> None:
    actions = _actions(_role_statements(detection, "Publisher"))
    assert actions["securityhub:BatchImportFindings"] == [{"Fn::Sub": DEFAULT_PRODUCT_ARN}]
    assert DEFAULT_PRODUCT_ARN == (
        "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default"
    )
    assert set(actions) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "securityhub:BatchImportFindings",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "kms:DescribeKey",
        "dynamodb:ListStreams",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }


def test_nothing_may_write_the_allowlist(detection: dict[str, Any]) -> None:
    for _, _, stmt in statements(detection):
        for action in as_list(stmt["Action"]):
            assert not (action.startswith("ssm:") and action != "ssm:GetParameter"), stmt


def test_allowlist_parameter_starts_valid_and_empty(detection: dict[str, Any]) -> None:
    _, param = one(detection, "AWS::SSM::Parameter")
    assert param["Properties"]["Name"] == "/codewatch/allowlist"
    assert param["Properties"]["Type"] == "String"
    assert json.loads(param["Properties"]["Value"]) == {"version": 1, "entries": []}


# --- monitoring ---


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources(template, "AWS::CloudWatch::Alarm").items()}


def test_every_alarm_notifies_the_topic(detection: dict[str, Any]) -> None:
    topic_id, _ = one(detection, "AWS::SNS::Topic")
    alarms = _alarms(detection)
    assert len(alarms) == 10
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_dlq_depth_alarms_cover_each_dlq(detection: dict[str, Any]) -> None:
    ids = queue_ids(detection)
    watched = set()
    for alarm in _alarms(detection).values():
        if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            assert alarm["Namespace"] == "AWS/SQS"
            assert alarm["Statistic"] == "Maximum"
            (dim,) = alarm["Dimensions"]
            watched.add(ref_id({"Fn::GetAtt": [dim["Value"]["Fn::GetAtt"][0], "x"]}))
    assert watched == {ids["IngestQueueDlq"], ids["IngestTargetDlq"], ids["PublishingFailureQueue"]}


def test_function_error_and_throttle_alarms(detection: dict[str, Any]) -> None:
    seen = set()
    for alarm in _alarms(detection).values():
        if alarm.get("Namespace") == "AWS/Lambda":
            (dim,) = alarm["Dimensions"]
            seen.add((alarm["MetricName"], dim["Value"]["Ref"].split("Function")[0]))
    assert seen == {
        ("Errors", "AggregationAggregator"),
        ("Throttles", "AggregationAggregator"),
        ("Errors", "PublishingPublisher"),
        ("Throttles", "PublishingPublisher"),
    }


def test_pipeline_metric_alarms(detection: dict[str, Any]) -> None:
    metrics = {a["MetricName"]: a for a in _alarms(detection).values() if a.get("Namespace") == "Codewatch"}
    assert set(metrics) == {"AllowlistInvalid", "FailedFindings", "WindowWriteErrors"}
    for alarm in metrics.values():
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "codewatch"}]
        assert alarm["Statistic"] == "Sum"


def test_topic_is_encrypted_and_ssl_only(detection: dict[str, Any]) -> None:
    key_id, key = one(detection, "AWS::KMS::Key", "DataKey")
    _topic_id, topic = one(detection, "AWS::SNS::Topic")
    assert ref_id(topic["Properties"]["KmsMasterKeyId"]) == key_id
    _, policy = one(detection, "AWS::SNS::TopicPolicy")
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )
    assert not resources(detection, "AWS::SNS::Subscription")  # no e-mail configured by default
    assert any(
        s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for s in key["Properties"]["KeyPolicy"]["Statement"]
    )


def test_email_subscription_when_configured(org_synth: Any) -> None:
    (sub,) = resources(org_synth.template("Codewatch"), "AWS::SNS::Subscription").values()
    assert sub["Properties"]["Protocol"] == "email"
    assert sub["Properties"]["Endpoint"] == "secops@example.com"


def test_dashboard_shows_every_pipeline_metric(detection: dict[str, Any]) -> None:
    from stacks.monitoring import AGGREGATOR_METRICS, PUBLISHER_METRICS

    _, dashboard = one(detection, "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = "".join(part for part in parts if isinstance(part, str))
    for metric in (*AGGREGATOR_METRICS, *PUBLISHER_METRICS, "ApproximateNumberOfMessagesVisible", "Errors", "Duration"):
        assert f'"{metric}"' in body, metric
    assert '"service","codewatch"' in body
