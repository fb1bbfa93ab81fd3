"""Broken dependencies: each is a clear error and a metric, and once fixed nothing is lost.

- The window table is missing: every write fails with ResourceNotFoundException, logged per message; the
  messages end in the ingest DLQ, whose depth is the alarmed metric; re-create the table and redrive.
- Security Hub is not enabled: ``BatchImportFindings`` answers InvalidAccessException (moto accepts imports
  whatever its hub state, so a hook gives Security Hub's answer); ``FailedFindings`` counts it, the stream
  records end in the on-failure queue; enable it and redrive them.
- The allowlist parameter is deleted: the detector fails open (every event alerts, ``AllowlistInvalid``,
  each finding says why); put it back and, after the cache age, suppression resumes. No event is dropped.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from codewatch_cli.demo import Pipeline, put_events
from tests.e2e.test_pipeline import finding_rows, hunt
from tests.stress.harness import (
    burst,
    feed,
    log_messages,
    metrics_emitted,
    output_lines,
    redrive_ingest_dlq,
    redrive_stream_failures,
)
from tests.stress.instrument import Instrument, error_response


def recreate_table(pipeline: Pipeline, template: dict[str, Any]) -> None:
    """Create the window table again from the template's definition (as a redeploy would)."""
    [table] = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=pipeline.deployment.table_name,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, **table["StreamSpecification"]},
    )
    # The stream is new: point the publisher's mapping at it, as the redeployed mapping would be.
    stream_arn = dynamodb.describe_table(TableName=pipeline.deployment.table_name)["Table"]["LatestStreamArn"]
    pipeline.publisher.mapping.source_arn = stream_arn
    pipeline.publisher.positions.clear()


def test_missing_table_then_redrive(
    stress_pipeline: Pipeline,
    stress_synth: Any,
    function_log: io.StringIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = burst(60, seed=31, hours=2)
    boto3.client("dynamodb").delete_table(TableName=stress_pipeline.deployment.table_name)
    put_events(records, stress_pipeline.region)
    stress_pipeline.aggregator.drain()  # the stream went with the table: its mapping has nothing to read

    dlq = stress_pipeline.dead_letters()
    assert dlq["IngestQueueDlqC58A21D9"] == len(records)  # the DLQ-depth alarm's metric
    lines = output_lines(function_log)
    errors = [line for line in log_messages(lines) if line["message"] == "window write failed"]
    assert {line["error_code"] for line in errors} == {"ResourceNotFoundException"}
    assert len({line["message_id"] for line in errors}) == len(records)

    recreate_table(stress_pipeline, stress_synth.template("Codewatch"))
    assert redrive_ingest_dlq(stress_pipeline) == len(records)
    stress_pipeline.settle()
    assert stress_pipeline.dead_letters()["IngestQueueDlqC58A21D9"] == 0
    assert stress_pipeline.window_counts() == (len(records), 0)
    assert finding_rows(stress_pipeline.findings()) == hunt(records, tmp_path, capsys)


def invalid_access(request: Any) -> AWSResponse:
    return error_response(request.url, 401, "InvalidAccessException", "Account is not subscribed to AWS Security Hub")


def test_security_hub_not_enabled_then_redrive(
    stress_pipeline: Pipeline,
    instrument: Instrument,
    function_log: io.StringIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = burst(40, seed=41, hours=2)
    instrument.overrides[("securityhub", "BatchImportFindings")] = invalid_access
    feed(stress_pipeline, records, chunk=40)

    assert stress_pipeline.findings() == []
    assert stress_pipeline.window_counts() == (len(records), 0)  # counting goes on; only publishing stopped
    lines = output_lines(function_log)
    assert metrics_emitted(lines)["FailedFindings"] > 0
    errors = [line for line in log_messages(lines, "ERROR") if line["message"].startswith("BatchImportFindings failed")]
    assert errors
    assert {line["error"] for line in errors} == {"InvalidAccessException"}
    assert stress_pipeline.dead_letters()["PublishingFailureQueueA854F16A"] == len(records)

    del instrument.overrides[("securityhub", "BatchImportFindings")]
    assert redrive_stream_failures(stress_pipeline) == len(records)
    assert stress_pipeline.dead_letters()["PublishingFailureQueueA854F16A"] == 0
    assert finding_rows(stress_pipeline.findings()) == hunt(records, tmp_path, capsys)


def test_deleted_allowlist_fails_open_then_suppresses_again(
    stress_pipeline: Pipeline, function_log: io.StringIO
) -> None:
    ci = {"user_arn": "arn:aws:sts::123456789012:assumed-role/Deploy/ci", "user_type": "AssumedRole"}
    from tests.support.cloudtrail import code_update

    def deploys(prefix: str, count: int) -> list[dict[str, Any]]:
        return [
            code_update(event_id=f"{prefix}-{n}", event_time=f"2026-11-30T10:{n:02d}:00Z", access_key="ASIAX", **ci)
            for n in range(count)
        ]

    boto3.client("ssm").delete_parameter(Name=stress_pipeline.deployment.parameter_name)
    feed(stress_pipeline, deploys("open", 10))
    assert stress_pipeline.window_counts() == (10, 0)  # failed open: every event alerts
    lines = output_lines(function_log)
    assert metrics_emitted(lines)["AllowlistInvalid"] == 10
    warnings = [line for line in log_messages(lines) if line["message"] == "allowlist not applied, failing open"]
    assert warnings
    assert all("ParameterNotFound" in line["reason"] for line in warnings)
    [finding] = stress_pipeline.findings()
    assert "ParameterNotFound" in json.dumps(finding)  # the finding says the allowlist was not applied

    entry = {"id": "ci-deploys", "reason": "release pipeline", "match": {"principal_arn": ["*:assumed-role/Deploy/*"]}}
    stress_pipeline.set_allowlist(json.dumps({"version": 1, "entries": [entry]}))
    time.sleep(1.2)  # the stress template's allowlist cache age is one second
    feed(stress_pipeline, deploys("fixed", 20)[10:])
    assert stress_pipeline.window_counts() == (10, 10)  # nothing lost: ten alerted, ten suppressed (audit)
