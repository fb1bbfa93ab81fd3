"""Malformed and hostile input: never an unhandled error, every refusal reported with its reason, good events
untouched, hostile-but-valid events counted into valid findings, and no raw control character in any log line.

Most cases go through the aggregator handler in-process (moto ``mock_aws``) in SQS batches of 1,000, for
speed; a sample goes through the whole deployed pipeline on moto server, publisher and Security Hub included.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import redirect_stdout
from typing import Any

import boto3
import pytest
from moto import mock_aws

from codewatch.aggregate import Aggregator
from codewatch.asff import validate_finding
from codewatch.finding import build_finding
from codewatch.records import normalise
from codewatch.window_item import decode_item
from codewatch_cli.demo import Pipeline
from codewatch_cli.emulator.runtime import cold_start
from tests.handlers.conftest import EMPTY_ALLOWLIST, PARAMETER, TABLE, create_table
from tests.stress.harness import log_messages, metrics_emitted, output_lines, unescaped_controls
from tests.stress.hostile import LONE_SURROGATES, MALFORMED_USERS, Case, generate, good_records
from tests.support.cloudtrail import FakeLambdaContext, code_update, envelope, sqs_event

CASES = 10_000
BATCH = 1_000


@pytest.fixture
def aggregator_in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, io.StringIO]]:
    """The aggregator handler on mock_aws, fresh caches, its logs and metrics captured."""
    for name, value in {
        "TABLE_NAME": TABLE,
        "ALLOWLIST_PARAMETER": PARAMETER,
        "ALLOWLIST_CACHE_SECONDS": "300",
        "WINDOW_MINUTES": "60",
        "RETENTION_DAYS": "30",
        "PRINCIPAL_TYPES": "default",
    }.items():
        monkeypatch.setenv(name, value)
    log = io.StringIO()
    with mock_aws():
        create_table(boto3.client("dynamodb"))
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value=EMPTY_ALLOWLIST, Type="String")
        from aggregator import handler

        cold_start(handler)
        handler.logger.registered_handler.setStream(log)
        yield handler, log
        cold_start(handler)


def is_refusal(line: dict[str, Any]) -> bool:
    return line["message"] == "malformed record"


def items() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=TABLE):
        found.extend(page["Items"])
    return found


def rows_for(summaries: list[Any], prefix: str) -> list[dict[str, Any]]:
    rows = [s.hunt_row() for s in summaries if (s.key.user_arn or "").startswith(prefix)]
    return sorted(rows, key=json.dumps)


def test_ten_thousand_hostile_events(aggregator_in_process: tuple[Any, io.StringIO]) -> None:
    handler, log = aggregator_in_process
    cases = generate(CASES, seed=1204)
    by_id: dict[str, Case] = {}
    failed: set[str] = set()
    for start in range(0, len(cases), BATCH):
        batch = cases[start : start + BATCH]
        event = sqs_event(case.body for case in batch)
        for record, case in zip(event["Records"], batch, strict=True):
            by_id[record["messageId"]] = case
        with redirect_stdout(log):  # EMF metrics are printed when the handler returns
            response = handler.lambda_handler(event, FakeLambdaContext())  # never raises
        failed |= {failure["itemIdentifier"] for failure in response["batchItemFailures"]}

    lines = output_lines(log)  # every line one JSON object
    reported = {
        line["message_id"]: line["reason"] for line in log_messages(lines) if line["message"] == "malformed record"
    }
    # Every refusal is the handler's own, named, with a reason: nothing failed on an unexpected exception.
    assert failed == set(reported)
    assert all(reason.strip() for reason in reported.values())
    outcome = Counter((case.expect, message_id in failed) for message_id, case in by_id.items())
    assert outcome[("good", True)] == outcome[("hostile", True)] == 0, "a readable event was refused"
    assert outcome[("malformed", True)] > 3_000
    metrics = metrics_emitted(lines)
    assert metrics["EventsReceived"] == CASES
    assert metrics["MalformedEvents"] == len(failed)
    # A malformed record not refused is one the rule does not match (an eventName that is not a string).
    assert metrics["EventsNotMatched"] >= outcome[("malformed", False)]
    assert unescaped_controls(log) == []
    reasons = Counter(reason.split(" (")[0] for reason in reported.values())
    assert reasons["message body is not JSON"] > 0
    assert reasons["message body is not an EventBridge envelope"] > 0

    # Good events are counted exactly as hunt counts them, whatever shared their batches.
    summaries = [decode_item(item) for item in items()]
    assert rows_for(summaries, MALFORMED_USERS) == [], "a malformed record was counted"
    good = good_records(cases)
    expected = sorted(Aggregator(3600).add_all(normalise(r) for r in good).rows(), key=json.dumps)
    assert rows_for(summaries, "arn:aws:iam::123456789012:user/good-") == expected
    # Every window, hostile ones included, makes a finding Security Hub would accept, with safe strings.
    hostile_accepted = sum(1 for mid, case in by_id.items() if case.expect == "hostile" and mid not in failed)
    assert sum(s.count for s in summaries) >= len(good) + hostile_accepted
    for summary in summaries:
        stamp = summary.updated_at or "2026-11-30T12:00:00.000Z"
        finding = build_finding(
            summary,
            account_id="123456789012",
            region="us-east-1",
            created_at=summary.created_at or stamp,
            updated_at=stamp,
        )
        assert validate_finding(finding) == [], summary.key
        text = json.dumps(finding, ensure_ascii=False)
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029\u202e" for c in text), summary.key


def test_hostile_sample_through_the_whole_pipeline(stress_pipeline: Pipeline, function_log: io.StringIO) -> None:
    cases = [case for case in generate(1_200, seed=77) if case.expect in ("hostile", "good", "malformed")]
    sample = random.Random(5).sample(cases, 150)
    sqs = boto3.client("sqs")
    for start in range(0, len(sample), 10):
        entries = [{"Id": str(i), "MessageBody": case.body} for i, case in enumerate(sample[start : start + 10])]
        sqs.send_message_batch(QueueUrl=stress_pipeline.aggregator.queue_url, Entries=entries)
    stress_pipeline.settle()

    malformed = sum(1 for case in sample if case.expect == "malformed")
    lines = output_lines(function_log)
    metrics = metrics_emitted(lines)
    # Each malformed message is refused (and rests in the DLQ after its receives) or does not match the rule.
    assert stress_pipeline.dead_letters()["IngestQueueDlqC58A21D9"] + metrics["EventsNotMatched"] == malformed
    assert stress_pipeline.window_counts()[0] == len(sample) - malformed
    findings = stress_pipeline.findings()
    assert findings
    for finding in findings:
        assert validate_finding(finding) == []
    good = [json.loads(case.body)["detail"] for case in sample if case.expect == "good"]
    good_findings = [f for f in findings if f["ProductFields"].get("codewatch/user_arn", "").startswith(
        "arn:aws:iam::123456789012:user/good-")]  # fmt: skip
    assert sum(int(f["ProductFields"]["codewatch/count"]) for f in good_findings) == len(good)
    assert metrics["FindingValidationErrors"] == 0
    assert unescaped_controls(function_log) == []


@pytest.mark.parametrize("field", ["userAgent", "functionName", "sourceIPAddress", "eventID"])
def test_lone_surrogates_are_counted_or_reported(aggregator_in_process: tuple[Any, io.StringIO], field: str) -> None:
    handler, log = aggregator_in_process
    record = code_update(event_id="surrogate-1")
    value = LONE_SURROGATES[0]
    if field == "functionName":
        record["requestParameters"]["functionName"] = value
    else:
        record[field] = value
    event = sqs_event([json.dumps(envelope(record))])  # json.dumps writes the surrogate as the \\ud800 escape
    with redirect_stdout(log):
        response = handler.lambda_handler(event, FakeLambdaContext())
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    reported = {
        line.get("message_id") for line in log_messages(output_lines(log)) if line["message"] == "malformed record"
    }
    counted = sum(decode_item(item).count for item in items())
    # Either counted (the value escaped on the way in) or refused with a reason; never failed unexplained.
    assert (counted == 1 and not failed) or (failed and failed <= reported)
