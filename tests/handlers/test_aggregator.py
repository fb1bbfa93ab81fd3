"""The aggregator handler on moto: exact, idempotent, windowed counts."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codewatch.aggregate import Aggregator
from codewatch.records import normalise
from codewatch.window_item import decode_item, item_size
from tests.handlers.conftest import PARAMETER, all_items
from tests.stress.instrument import error_response
from tests.support.cloudtrail import ACTORS, FakeLambdaContext, code_update, envelope, sqs_event, sqs_event_of_records

CONTEXT = FakeLambdaContext()


def run(handler: Any, event: dict[str, Any]) -> list[str]:
    """Invoke the handler; return the IDs of the records it reported failed."""
    response = handler.lambda_handler(event, CONTEXT)
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def hunt_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(Aggregator(3600).add_all(normalise(r) for r in records).rows(), key=json.dumps)


def table_rows(client: Any) -> list[dict[str, Any]]:
    summaries = [decode_item(item) for item in all_items(client)]
    return sorted((s.hunt_row() for s in summaries if s.count), key=json.dumps)


def scenario(seed: int = 7, events: int = 60) -> list[dict[str, Any]]:
    """Several actors over two windows, with times deliberately scattered."""
    rng = random.Random(seed)
    base = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    records = []
    for _ in range(events):
        moment = base + timedelta(seconds=rng.randrange(0, 7200))
        records.append(
            code_update(
                event_time=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                function=rng.choice(["payments-api", "orders", "auth-edge"]),
                **rng.choice(ACTORS),
            )
        )
    return records


def test_counts_equal_hunt(aggregator: Any, aws: dict[str, Any]) -> None:
    records = scenario()
    assert run(aggregator, sqs_event_of_records(records)) == []
    assert table_rows(aws["dynamodb"]) == hunt_rows(records)


def test_each_event_three_times_shuffled_counts_once(aggregator: Any, aws: dict[str, Any]) -> None:
    records = scenario(seed=11)
    deliveries = records * 3
    random.Random(3).shuffle(deliveries)
    for start in range(0, len(deliveries), 10):
        assert run(aggregator, sqs_event_of_records(deliveries[start : start + 10])) == []
    assert table_rows(aws["dynamodb"]) == hunt_rows(records)


def test_item_carries_enrichment_and_ttl(aggregator: Any, aws: dict[str, Any]) -> None:
    record = code_update(
        user_agent="aws-cli/2.15 Python/3.11 Linux/6.6.9-amd64 kali", event_time="2026-11-30T10:15:00Z"
    )
    run(aggregator, sqs_event_of_records([record]))
    [item] = all_items(aws["dynamodb"])
    summary = decode_item(item)
    assert summary.risk_score == 63 + 25 + 5
    assert summary.values("ua_classes") == ("pentest/kali",)
    assert summary.values("code_sha256") == (record["responseElements"]["codeSha256"],)
    assert summary.values("published_versions") == ("7",)
    assert summary.values("function_arns") == ("arn:aws:lambda:us-east-1:123456789012:function:payments-api",)
    window_end = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert summary.expires_at == int(window_end.timestamp()) + 30 * 86400
    assert summary.created_at is not None
    assert summary.created_at == summary.updated_at


def events_in_one_window(count: int) -> list[dict[str, Any]]:
    base = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    return [
        code_update(
            event_id=f"evt-{n:05d}", event_time=(base + timedelta(seconds=n % 3600)).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        for n in range(count)
    ]


@pytest.mark.parametrize(
    "count", [pytest.param(500, id="500"), pytest.param(10_000, id="10000", marks=pytest.mark.slow)]
)
def test_many_events_in_one_window(aggregator: Any, aws: dict[str, Any], count: int) -> None:
    """Exact under redelivery, and the idempotency set stays far below DynamoDB's 400 KB item limit.

    moto's UpdateItem slows with the set's size (it re-sizes the whole item on every write), so the
    suite runs 500 events and checks the per-event cost leaves room for 10,000; ``make stress``
    runs the full 10,000.
    """
    records = events_in_one_window(count)
    for start in range(0, len(records), 500):
        assert run(aggregator, sqs_event_of_records(records[start : start + 500])) == []
    assert run(aggregator, sqs_event_of_records(records[:100])) == []  # a redelivered slice changes nothing
    [item] = all_items(aws["dynamodb"])
    summary = decode_item(item)
    assert summary.count == count == len(item["seen"]["BS"])
    assert summary.first_time == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert summary.last_time == datetime(2026, 11, 30, 10, 0, tzinfo=UTC) + timedelta(seconds=min(count, 3600) - 1)
    assert sum(len(element) for element in item["seen"]["BS"]) == 12 * count
    assert item_size(item) + 12 * (10_000 - count) < 150_000


def test_malformed_records_fail_alone(aggregator: Any, aws: dict[str, Any]) -> None:
    good = [code_update(), code_update(function="orders")]
    bad_time = code_update()
    bad_time["eventTime"] = "yesterday"
    bodies = [
        json.dumps(envelope(good[0])),
        "not json {",
        json.dumps({"hello": "world"}),
        json.dumps(envelope(bad_time)),
        json.dumps(envelope(code_update(), detail_type="AWS Service Event via CloudTrail")),
        json.dumps({**envelope(code_update()), "detail": None}),
        json.dumps(envelope(code_update(event_time="9999-12-31T23:30:00Z"))),
        json.dumps(envelope(good[1])),
    ]
    event = sqs_event(bodies)
    failed = run(aggregator, event)
    ids = [record["messageId"] for record in event["Records"]]
    assert failed == ids[1:7]
    assert table_rows(aws["dynamodb"]) == hunt_rows(good)


def test_failed_calls_and_aws_services_are_not_counted(aggregator: Any, aws: dict[str, Any]) -> None:
    records = [code_update(error_code="AccessDeniedException"), code_update(user_type="AWSService")]
    assert run(aggregator, sqs_event_of_records(records)) == []
    assert all_items(aws["dynamodb"]) == []


# --- the allowlist -----------------------------------------------------------------------------


def allowlist(*entries: dict[str, Any]) -> str:
    return json.dumps({"version": 1, "entries": list(entries)})


CI_ENTRY = {
    "id": "ci-deploys",
    "reason": "release pipeline",
    "match": {"principal_arn": ["arn:aws:sts::*:assumed-role/Deploy/*"]},
}


def ci_record(**overrides: Any) -> dict[str, Any]:
    return code_update(
        user_type="AssumedRole",
        user_arn="arn:aws:sts::123456789012:assumed-role/Deploy/ci",
        access_key="ASIAX",
        **overrides,
    )


def test_suppressed_event_is_counted_apart(aggregator: Any, aws: dict[str, Any]) -> None:
    aws["ssm"].put_parameter(Name=PARAMETER, Value=allowlist(CI_ENTRY), Type="String", Overwrite=True)
    run(aggregator, sqs_event_of_records([ci_record(), ci_record(), code_update()]))
    summaries = {s.key.user_type: s for s in map(decode_item, all_items(aws["dynamodb"]))}
    ci, developer = summaries["AssumedRole"], summaries["IAMUser"]
    assert (ci.count, ci.suppressed_count) == (0, 2)
    assert ci.values("suppressed_by") == ("ci-deploys",)
    assert ci.values("suppressed_function") == ("payments-api",)
    assert ci.function_updated == ()
    assert ci.created_at is None  # nothing alerting yet: no finding to create
    assert (developer.count, developer.suppressed_count) == (1, 0)
    assert developer.values("suppressed_by") == ()


def test_redelivery_after_an_allowlist_change_counts_once(aggregator: Any, aws: dict[str, Any]) -> None:
    """Delivered before and after the allowlist starts suppressing it, an event still counts once."""
    event = sqs_event_of_records([ci_record()])
    run(aggregator, event)
    aws["ssm"].put_parameter(Name=PARAMETER, Value=allowlist(CI_ENTRY), Type="String", Overwrite=True)
    aggregator.allowlist_source.cache_clear()  # a new container: it reads the new allowlist
    run(aggregator, event)
    [summary] = map(decode_item, all_items(aws["dynamodb"]))
    assert (summary.count, summary.suppressed_count) == (1, 0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "ParameterNotFound"),
        ("{not json", "invalid document: not valid JSON"),
        (json.dumps({"version": 1, "entries": [{"id": "x", "match": {"account": ["1"]}}]}), "'reason' is required"),
        (json.dumps({"version": 1, "entries": [{"id": "x", "reason": "r", "match": {}}]}), "non-empty object"),
    ],
)
def test_broken_allowlist_fails_open(aggregator: Any, aws: dict[str, Any], value: str | None, reason: str) -> None:
    if value is None:
        aws["ssm"].delete_parameter(Name=PARAMETER)
    else:
        aws["ssm"].put_parameter(Name=PARAMETER, Value=value, Type="String", Overwrite=True)
    assert run(aggregator, sqs_event_of_records([ci_record()])) == []
    [summary] = map(decode_item, all_items(aws["dynamodb"]))
    assert (summary.count, summary.suppressed_count) == (1, 0)
    [error] = summary.values("allowlist_errors")
    assert reason in error


def emitted(capsys: pytest.CaptureFixture[str], metric: str) -> list[float]:
    """The values of one EMF metric the handler printed."""
    values: list[float] = []
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line) if line.startswith('{"_aws"') else {}
        value = document.get(metric, [])
        values.extend(value if isinstance(value, list) else [value])
    return values


def test_expired_entry_is_ignored_and_reported_once(
    aggregator: Any, aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    expired = dict(CI_ENTRY, expires="2020-01-01T00:00:00Z")
    aws["ssm"].put_parameter(Name=PARAMETER, Value=allowlist(expired), Type="String", Overwrite=True)
    run(aggregator, sqs_event_of_records([ci_record(event_id=f"x{n}") for n in range(5)]))
    assert emitted(capsys, "AllowlistExpiredEntries") == [1.0]
    [summary] = map(decode_item, all_items(aws["dynamodb"]))
    assert (summary.count, summary.suppressed_count) == (5, 0)


def test_allowlist_is_cached_then_refreshed(
    aggregator: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    clock = [1000.0]
    monkeypatch.setattr("aggregator.allowlist_source.time.monotonic", lambda: clock[0])
    from aws_lambda_powertools.utilities.parameters import base

    real_now = base.datetime.now
    monkeypatch.setattr(
        base,
        "datetime",
        type(
            "FrozenDatetime",
            (),
            {"now": staticmethod(lambda *a, **k: real_now(*a, **k) + timedelta(seconds=clock[0] - 1000))},
        ),
    )
    source = aggregator.allowlist_source()
    source._provider.client.meta.events.register("before-call.ssm.GetParameter", lambda **_: calls.append("get"))
    run(aggregator, sqs_event_of_records([ci_record() for _ in range(20)]))
    assert len(calls) == 1
    aws["ssm"].put_parameter(Name=PARAMETER, Value=allowlist(CI_ENTRY), Type="String", Overwrite=True)
    run(aggregator, sqs_event_of_records([ci_record()]))
    assert len(calls) == 1  # still inside the cache period: the change is not seen yet
    clock[0] += 301
    run(aggregator, sqs_event_of_records([ci_record()]))
    assert len(calls) == 2
    [summary] = map(decode_item, all_items(aws["dynamodb"]))
    assert (summary.count, summary.suppressed_count) == (21, 1)


# --- injected throttling -----------------------------------------------------------------------


def throttle(client: Any, operation: str, fail_when: Any) -> list[int]:
    """Make ``operation`` answer ThrottlingException (HTTP 400) whenever ``fail_when(call_number)``."""
    calls: list[int] = []

    def respond(request: Any, **_: Any) -> AWSResponse | None:
        calls.append(len(calls))
        if not fail_when(len(calls) - 1):
            return None
        return error_response(request.url, 400, "ThrottlingException", "Rate exceeded")

    client.meta.events.register_first(f"before-send.{client.meta.service_model.endpoint_prefix}.{operation}", respond)
    return calls


def test_dynamodb_throttling_fails_only_affected_records(
    aggregator: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    records = [code_update(event_id=f"e{n}", function=f"fn-{n}") for n in range(6)]
    client = aggregator.dynamodb()
    # Calls 4..7 are the third record's four attempts (standard mode, max_attempts=4): it fails.
    # Call 1 fails once and is retried within the same invocation.
    calls = throttle(client, "UpdateItem", lambda n: n == 1 or 4 <= n <= 7)
    event = sqs_event_of_records(records)
    failed = run(aggregator, event)
    assert failed == [event["Records"][3]["messageId"]]
    assert len(calls) == 6 + 1 + 3
    # Redelivery of the whole batch (as SQS would after the visibility timeout) completes it, once.
    client.meta.events.unregister("before-send.dynamodb.UpdateItem", throttle)
    assert run(aggregator, event) == []
    assert table_rows(aws["dynamodb"]) == hunt_rows(records)


def test_ssm_throttling_leaves_records_for_redelivery(
    aggregator: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    ssm_client = aggregator.allowlist_source()._provider.client
    throttling = [True]
    throttle(ssm_client, "GetParameter", lambda n: throttling[0])
    records = [ci_record(), code_update()]
    event = sqs_event_of_records(records)
    assert len(run(aggregator, event)) == 2
    assert all_items(aws["dynamodb"]) == []
    throttling[0] = False
    assert run(aggregator, event) == []
    assert table_rows(aws["dynamodb"]) == hunt_rows(records)


def test_ssm_throttling_on_the_last_delivery_fails_open(
    aggregator: Any, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rather than let the DLQ take an alert, the last delivery counts the event without the allowlist."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    throttle(aggregator.allowlist_source()._provider.client, "GetParameter", lambda n: True)
    event = sqs_event_of_records([ci_record()])
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    assert run(aggregator, event) == []
    [summary] = map(decode_item, all_items(aws["dynamodb"]))
    assert summary.count == 1
    [error] = summary.values("allowlist_errors")
    assert "ThrottlingException on the last delivery" in error


# --- any delivery order gives the item of one clean pass ----------------------------------------

FIXED = scenario(seed=5, events=12)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    deliveries=st.lists(st.sampled_from(range(len(FIXED))), min_size=0, max_size=20).map(
        lambda extra: list(range(len(FIXED))) + extra
    ),
    order=st.randoms(use_true_random=False),
    batch=st.integers(min_value=1, max_value=10),
)
def test_any_redelivery_order_matches_one_clean_pass(
    aggregator: Any, aws: dict[str, Any], deliveries: list[int], order: random.Random, batch: int
) -> None:
    client = aws["dynamodb"]
    for item in all_items(client):
        client.delete_item(TableName="codewatch-windows", Key={"pk": item["pk"], "sk": item["sk"]})
    order.shuffle(deliveries)
    stream = [FIXED[i] for i in deliveries]
    for start in range(0, len(stream), batch):
        assert run(aggregator, sqs_event_of_records(stream[start : start + batch])) == []
    assert table_rows(client) == hunt_rows(FIXED)
