"""The publisher on moto: stream records built from real window items, findings read back from Security Hub.

Window items are written with the aggregator's own ``build_update`` into a moto table and read back with the
low-level client (``ReturnValues=ALL_NEW`` is exactly the stream's ``NEW_IMAGE``), then wrapped as Lambda
delivers DynamoDB stream records: binary values as base64 text. Failure paths moto cannot produce
(``FailedFindings``, throttling) use ``botocore.stub.Stubber`` on the handler's own client.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from codewatch.asff import validate_finding
from codewatch.enrich import enrich
from codewatch.finding import build_finding, finding_id
from codewatch.records import normalise
from codewatch.window_item import build_update, decode_item
from tests.handlers.conftest import create_table
from tests.support.cloudtrail import ACCOUNT, REGION, FakeLambdaContext, code_update

TABLE = "publisher-test-windows"
MEMBER = "222233334444"
NOW = datetime(2026, 11, 30, 10, 20, tzinfo=UTC)


# --- conftest_publisher helpers (kept in this module: shared conftest files belong to others) -------------


def to_lambda_json(value: Any) -> Any:
    """boto3's low-level attribute values -> the JSON Lambda puts in a stream event (binary as base64)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for kind, inner in value.items():
            if kind == "B":
                out[kind] = base64.b64encode(bytes(inner)).decode()
            elif kind == "BS":
                out[kind] = [base64.b64encode(bytes(element)).decode() for element in inner]
            else:
                out[kind] = to_lambda_json(inner)
        return out
    if isinstance(value, list):
        return [to_lambda_json(element) for element in value]
    return value


class Stream:
    """Writes events with the real ``build_update`` and turns each resulting image into a stream record."""

    def __init__(self, dynamodb: Any) -> None:
        self.dynamodb = dynamodb
        self.sequence = 100_000_000_000_000_000_000

    def record(self, item: dict[str, Any], event_name: str) -> dict[str, Any]:
        self.sequence += 1
        return {
            "eventID": f"evt-{self.sequence}",
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": {
                "ApproximateCreationDateTime": 1764497700,
                "Keys": to_lambda_json({"pk": item["pk"], "sk": item["sk"]}),
                "NewImage": to_lambda_json(item),
                "SequenceNumber": str(self.sequence),
                "SizeBytes": 100,
                "StreamViewType": "NEW_IMAGE",
            },
            "eventSourceARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}/stream/2026-11-30T00:00:00.000",
        }

    def write(
        self, cloudtrail: dict[str, Any], *, now: datetime = NOW, suppressed_by: str | None = None
    ) -> dict[str, Any]:
        """Count one CloudTrail record as the aggregator does; return the stream record of the new image."""
        event = normalise(cloudtrail)
        update = build_update(
            event,
            enrich(event),
            window_seconds=3600,
            retention_seconds=86400,
            now=now,
            suppressed_by=suppressed_by,
        )
        item = self.dynamodb.update_item(TableName=TABLE, ReturnValues="ALL_NEW", **update)["Attributes"]
        seen = len(item["seen"]["BS"])
        return self.record(item, "INSERT" if seen == 1 else "MODIFY")

    def ttl_remove(self, key_source: dict[str, Any]) -> dict[str, Any]:
        """What DynamoDB's TTL deletion puts on a NEW_IMAGE stream: keys only, made by the service."""
        keys = key_source["dynamodb"]["Keys"]
        record = self.record({"pk": keys["pk"], "sk": keys["sk"]}, "REMOVE")
        del record["dynamodb"]["NewImage"]
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        return record


class LocalTable:
    """A DynamoDB stand-in for bursts: moto re-parses the growing ``seen`` set on every write, which makes
    1,000 writes on one key take minutes. This applies exactly the expression forms ``build_update`` emits
    (``SET a = :v``, ``SET a = if_not_exists(a, :v)``, ``ADD`` to numbers and sets, the ``NOT contains``
    conditions), and ``test_local_table_matches_moto`` proves it gives moto's images."""

    _SET = re.compile(r"(#a\d+) = (?:if_not_exists\((#a\d+), (:v\d+)\)|(:v\d+))")
    _ADD = re.compile(r"(#a\d+) (:v\d+)")

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def update_item(self, TableName: str, Key: dict[str, Any], UpdateExpression: str, **kw: Any) -> dict[str, Any]:
        names, values = kw["ExpressionAttributeNames"], kw["ExpressionAttributeValues"]
        item = self.items.setdefault((Key["pk"]["S"], Key["sk"]["S"]), dict(Key))
        for seen, element in re.findall(r"NOT contains\((#a\d+), (:v\d+)\)", kw["ConditionExpression"]):
            if values[element]["B"] in item.get(names[seen], {}).get("BS", []):
                raise AssertionError("duplicate event: the condition would fail")
        set_part, add_part = UpdateExpression.removeprefix("SET ").split(" ADD ")
        for name, guarded, default, plain in self._SET.findall(set_part):
            if guarded and names[guarded] in item:
                continue
            item[names[name]] = values[default or plain]
        for name, value in self._ADD.findall(add_part):
            attribute, addition = names[name], values[value]
            current = item.get(attribute)
            if "N" in addition:
                item[attribute] = {"N": str(int(current["N"] if current else 0) + int(addition["N"]))}
            else:
                ((kind, elements),) = addition.items()
                merged = list(current[kind]) if current else []
                merged.extend(e for e in elements if e not in merged)
                item[attribute] = {kind: merged}
        return {"Attributes": {k: dict(v) for k, v in item.items()}}


def emitted_metrics(text: str) -> dict[str, float]:
    """Sum the EMF metrics Powertools printed (one JSON document per line)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for definition in document["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                value = document[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + (
                    sum(value) if isinstance(value, list) else value
                )
    return totals


def logged(handler: Any, caplog: pytest.LogCaptureFixture) -> str:
    """The handler's log lines as Powertools writes them (JSON), from pytest's captured records."""
    return "\n".join(handler.logger.registered_formatter.format(record) for record in caplog.records)


def findings(client: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("get_findings").paginate():
        out.extend(page["Findings"])
    return out


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The handler module on a moto Security Hub and window table, caches emptied, sleeps recorded."""
    monkeypatch.delenv("MEMBER_FINDINGS_ROLE_NAME", raising=False)
    monkeypatch.delenv("RUNBOOK_URL", raising=False)
    from publisher import handler

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb, TABLE)
        boto3.client("securityhub", region_name=REGION).enable_security_hub()
        handler.reset_caches()
        sleeps: list[float] = []
        monkeypatch.setattr(handler, "sleep", sleeps.append)
        handler.sleeps = sleeps  # type: ignore[attr-defined]
        handler.stream = Stream(dynamodb)  # type: ignore[attr-defined]
        yield handler
        handler.reset_caches()


def invoke(handler: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    return handler.lambda_handler({"Records": records}, FakeLambdaContext())


def failed_sequence_numbers(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def count_imports(client: Any) -> list[int]:
    """Record the number of findings in each BatchImportFindings call the client makes."""
    sizes: list[int] = []
    client.meta.events.register(
        "before-parameter-build.securityhub.BatchImportFindings",
        lambda params, **_: sizes.append(len(params["Findings"])),
    )
    return sizes


# --- moto: the finding's life ------------------------------------------------------------------------------


def test_first_event_creates_one_valid_finding(publisher: Any) -> None:
    record = publisher.stream.write(code_update(event_time="2026-11-30T10:15:00Z"))
    assert record["eventName"] == "INSERT"

    assert invoke(publisher, [record]) == {"batchItemFailures": []}

    [finding] = findings(publisher.securityhub_client())
    assert finding["Id"].startswith("codewatch/lambda-code-update/K#")
    assert finding["Id"].endswith("/2026-11-30T10:00:00Z")
    assert finding["AwsAccountId"] == ACCOUNT
    assert finding["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert finding["CreatedAt"] == finding["UpdatedAt"] == "2026-11-30T10:20:00.000Z"
    assert finding["ProductFields"]["codewatch/count"] == "1"
    assert finding["Resources"][0]["Id"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments-api"
    assert finding["Remediation"]["Recommendation"]["Url"].endswith("#runbook-responding-to-a-codewatch-finding")
    assert validate_finding(finding) == []


def test_later_events_update_the_same_finding_in_place(publisher: Any) -> None:
    first = publisher.stream.write(code_update(event_time="2026-11-30T10:15:00Z"), now=NOW)
    invoke(publisher, [first])
    [created] = findings(publisher.securityhub_client())

    later = NOW + timedelta(seconds=7, milliseconds=250)
    second = publisher.stream.write(code_update(event_time="2026-11-30T10:40:00Z", function="orders-api"), now=later)
    assert second["eventName"] == "MODIFY"
    assert invoke(publisher, [second]) == {"batchItemFailures": []}

    [updated] = findings(publisher.securityhub_client())
    assert updated["Id"] == created["Id"]
    assert updated["CreatedAt"] == created["CreatedAt"]
    assert updated["UpdatedAt"] > created["UpdatedAt"]
    assert updated["UpdatedAt"] >= "2026-11-30T10:20:07.250Z"  # never older than the item's own stamp
    assert updated["ProductFields"]["codewatch/count"] == "2"
    assert updated["ProductFields"]["codewatch/lastTime"] == "2026-11-30T10:40:00Z"
    assert json.loads(updated["ProductFields"]["codewatch/function_updated"]) == ["orders-api", "payments-api"]
    assert len(updated["Resources"]) == 2


def test_two_windows_make_two_findings(publisher: Any) -> None:
    records = [
        publisher.stream.write(code_update(event_time="2026-11-30T10:15:00Z")),
        publisher.stream.write(code_update(event_time="2026-11-30T11:15:00Z")),
    ]
    invoke(publisher, records)
    starts = sorted(f["ProductFields"]["codewatch/window_start"] for f in findings(publisher.securityhub_client()))
    assert starts == ["2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z"]


def test_ttl_removals_change_nothing(publisher: Any) -> None:
    record = publisher.stream.write(code_update())
    invoke(publisher, [record])
    before = findings(publisher.securityhub_client())
    sizes = count_imports(publisher.securityhub_client())

    response = invoke(publisher, [publisher.stream.ttl_remove(record)])

    assert response == {"batchItemFailures": []}
    assert sizes == []
    assert findings(publisher.securityhub_client()) == before


def test_suppressed_windows_raise_nothing(publisher: Any) -> None:
    record = publisher.stream.write(code_update(), suppressed_by="ci-deploys")
    assert invoke(publisher, [record]) == {"batchItemFailures": []}
    assert findings(publisher.securityhub_client()) == []


def test_undecodable_image_fails_from_its_sequence_number_on(publisher: Any, caplog: pytest.LogCaptureFixture) -> None:
    good = publisher.stream.write(code_update(user_arn=f"arn:aws:iam::{ACCOUNT}:user/a"))
    poison = publisher.stream.write(code_update(user_arn=f"arn:aws:iam::{ACCOUNT}:user/b"))
    poison["dynamodb"]["NewImage"]["window_start"] = {"S": "not a time\x1b[2J"}
    after = publisher.stream.write(code_update(user_arn=f"arn:aws:iam::{ACCOUNT}:user/c"))

    response = invoke(publisher, [good, poison, after])

    assert failed_sequence_numbers(response) == [
        poison["dynamodb"]["SequenceNumber"],
        after["dynamodb"]["SequenceNumber"],
    ]
    output = logged(publisher, caplog)
    assert poison["dynamodb"]["SequenceNumber"] in output
    assert "\x1b" not in output
    # The good records are still imported; Lambda retries from the poison record only.
    assert len(findings(publisher.securityhub_client())) == 2


def test_local_table_matches_moto(publisher: Any) -> None:
    local = Stream(LocalTable())
    events = [
        code_update(event_time=f"2026-11-30T10:{i:02d}:00Z", function=f"fn-{i % 3}", user_agent=ua)
        for i, ua in enumerate(["aws-cli/2.15.0"] * 10 + ["aws-cli/2.15.0 kali"] * 10)
    ]
    for index, event in enumerate(events):
        now = NOW + timedelta(seconds=index)
        from_moto, from_local = publisher.stream.write(event, now=now), local.write(event, now=now)
        assert from_local["eventName"] == from_moto["eventName"]
        assert decode_item(from_local["dynamodb"]["NewImage"]) == decode_item(from_moto["dynamodb"]["NewImage"])
        moto_seen = sorted(from_moto["dynamodb"]["NewImage"]["seen"]["BS"])
        assert sorted(from_local["dynamodb"]["NewImage"]["seen"]["BS"]) == moto_seen


def test_updated_at_moves_forward_even_when_aggregator_clocks_disagree(publisher: Any) -> None:
    """The second event was stamped by a container whose clock runs 5 s behind the first's."""
    first = publisher.stream.write(code_update(event_time="2026-11-30T10:15:00Z"), now=NOW)
    invoke(publisher, [first])
    [created] = findings(publisher.securityhub_client())
    assert created["UpdatedAt"] == created["CreatedAt"]
    behind = publisher.stream.write(code_update(event_time="2026-11-30T10:16:00Z"), now=NOW - timedelta(seconds=5))
    invoke(publisher, [behind])
    [updated] = findings(publisher.securityhub_client())
    assert updated["ProductFields"]["codewatch/count"] == "2"
    assert updated["CreatedAt"] == created["CreatedAt"]
    assert updated["UpdatedAt"] > created["UpdatedAt"]


def test_an_older_image_replayed_later_does_not_roll_the_finding_back(publisher: Any) -> None:
    first = publisher.stream.write(code_update(event_time="2026-11-30T10:15:00Z"))
    second = publisher.stream.write(code_update(event_time="2026-11-30T10:16:00Z"), now=NOW + timedelta(seconds=1))
    invoke(publisher, [first, second, copy.deepcopy(first)])
    [finding] = findings(publisher.securityhub_client())
    assert finding["ProductFields"]["codewatch/count"] == "2"
    assert finding["UpdatedAt"] >= "2026-11-30T10:20:01.000Z"


def test_burst_of_1000_events_on_one_key_costs_one_import(publisher: Any) -> None:
    burst = Stream(LocalTable())
    records = [
        burst.write(code_update(event_time=f"2026-11-30T10:{i % 60:02d}:00Z"), now=NOW + timedelta(milliseconds=i))
        for i in range(1000)
    ]
    sizes = count_imports(publisher.securityhub_client())

    assert invoke(publisher, records) == {"batchItemFailures": []}

    assert len(sizes) <= 2
    assert sizes == [1]
    [finding] = findings(publisher.securityhub_client())
    assert finding["ProductFields"]["codewatch/count"] == "1000"
    assert finding["UpdatedAt"] >= "2026-11-30T10:20:00.999Z"


def test_findings_go_out_in_calls_of_at_most_100(publisher: Any, capsys: pytest.CaptureFixture) -> None:
    stream = Stream(LocalTable())
    records = [stream.write(code_update(user_arn=f"arn:aws:iam::{ACCOUNT}:user/u{i}")) for i in range(230)]
    sizes = count_imports(publisher.securityhub_client())

    assert invoke(publisher, records) == {"batchItemFailures": []}

    assert sizes == [100, 100, 30]
    assert len(findings(publisher.securityhub_client())) == 230
    assert emitted_metrics(capsys.readouterr().out)["FindingsImported"] == 230


def test_runbook_url_can_be_overridden(publisher: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_URL", "https://wiki.example.com/codewatch#runbook")
    invoke(publisher, [publisher.stream.write(code_update())])
    [finding] = findings(publisher.securityhub_client())
    assert finding["Remediation"]["Recommendation"]["Url"] == "https://wiki.example.com/codewatch#runbook"


HOSTILE = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=400)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.fixed_dictionaries(
            {
                "user_agent": st.none() | HOSTILE,
                "src_ip": st.none() | HOSTILE | st.sampled_from(["198.51.100.7", "2001:db8::1", "AWS Internal"]),
                "function": st.text(min_size=1, max_size=200),
                "user_arn": HOSTILE,
                "user_type": st.sampled_from(["IAMUser", "Root", "AssumedRole", "FederatedUser", "Unknown"]),
            }
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_item_the_aggregator_writes_gives_a_valid_finding(events: list[dict[str, Any]]) -> None:
    """Real items (``build_update`` on arbitrary logged text), read back from the stream's JSON, build findings
    that pass the model validation. Pure: no Security Hub call."""
    stream = Stream(LocalTable())
    last: dict[str, dict[str, Any]] = {}
    for index, overrides in enumerate(events):
        record = stream.write(code_update(**overrides), now=NOW + timedelta(milliseconds=index))
        last[record["dynamodb"]["Keys"]["pk"]["S"]] = record
    for record in last.values():
        item = decode_item(json.loads(json.dumps(record["dynamodb"]["NewImage"])))
        finding = build_finding(
            item, account_id=ACCOUNT, region=REGION, created_at=item.created_at, updated_at=item.updated_at
        )
        assert validate_finding(finding) == []
        assert finding["ProductFields"]["codewatch/count"] == str(item.count)


# --- failure paths on a stubbed client ---------------------------------------------------------------------


def test_failed_findings_become_batch_item_failures(
    publisher: Any, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    records = [publisher.stream.write(code_update(user_arn=f"arn:aws:iam::{ACCOUNT}:user/u{i}")) for i in range(3)]
    refused = finding_id(decode_item(records[1]["dynamodb"]["NewImage"]))
    with Stubber(publisher.securityhub_client()) as stubber:
        stubber.add_response(
            "batch_import_findings",
            {
                "FailedCount": 1,
                "SuccessCount": 2,
                "FailedFindings": [{"Id": refused, "ErrorCode": "InvalidInput", "ErrorMessage": "bad\x07 thing"}],
            },
        )
        response = invoke(publisher, records)

    # Lambda resumes from the lowest reported sequence number: the refused record and all after it.
    assert failed_sequence_numbers(response) == [r["dynamodb"]["SequenceNumber"] for r in records[1:]]
    output = logged(publisher, caplog)
    assert refused in output
    assert "InvalidInput" in output
    assert "\x07" not in output
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["FailedFindings"] == 1
    assert metrics["FindingsImported"] == 2


def test_throttling_is_retried_with_backoff(publisher: Any, capsys: pytest.CaptureFixture) -> None:
    record = publisher.stream.write(code_update())
    client = publisher.securityhub_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("batch_import_findings", "TooManyRequestsException", http_status_code=429)
        stubber.add_client_error("batch_import_findings", "InternalException", http_status_code=500)
        stubber.add_response("batch_import_findings", {"FailedCount": 0, "SuccessCount": 1, "FailedFindings": []})
        response = invoke(publisher, [record])
        stubber.assert_no_pending_responses()

    assert response == {"batchItemFailures": []}
    assert len(publisher.sleeps) == 2
    assert all(0 <= delay <= publisher.BACKOFF_CAP_SECONDS for delay in publisher.sleeps)
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["ImportRetries"] == 2
    assert metrics["FindingsImported"] == 1


def test_retries_are_bounded_then_the_records_fail(publisher: Any, capsys: pytest.CaptureFixture) -> None:
    records = [publisher.stream.write(code_update()), publisher.stream.write(code_update(function="b"))]
    client = publisher.securityhub_client()
    with Stubber(client) as stubber:
        for _ in range(publisher.MAX_ATTEMPTS):
            stubber.add_client_error("batch_import_findings", "ThrottlingException", http_status_code=400)
        response = invoke(publisher, records)
        stubber.assert_no_pending_responses()

    assert failed_sequence_numbers(response) == [r["dynamodb"]["SequenceNumber"] for r in records]
    assert len(publisher.sleeps) == publisher.MAX_ATTEMPTS - 1
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["ImportRetries"] == publisher.MAX_ATTEMPTS - 1
    assert metrics["FailedFindings"] == 1  # two records, one collapsed finding


def test_no_retry_is_started_that_would_outlive_the_invocation(publisher: Any) -> None:
    class ShortContext(FakeLambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return publisher.TIME_RESERVE_MS - 1

    record = publisher.stream.write(code_update())
    with Stubber(publisher.securityhub_client()) as stubber:
        stubber.add_client_error("batch_import_findings", "TooManyRequestsException", http_status_code=429)
        response = publisher.lambda_handler({"Records": [record]}, ShortContext())
    assert failed_sequence_numbers(response) == [record["dynamodb"]["SequenceNumber"]]
    assert publisher.sleeps == []


def test_errors_that_are_not_throttling_are_not_retried(publisher: Any) -> None:
    record = publisher.stream.write(code_update())
    with Stubber(publisher.securityhub_client()) as stubber:
        stubber.add_client_error("batch_import_findings", "AccessDeniedException", http_status_code=403)
        response = invoke(publisher, [record])
    assert failed_sequence_numbers(response) == [record["dynamodb"]["SequenceNumber"]]
    assert publisher.sleeps == []


def test_an_invalid_finding_is_never_sent(
    publisher: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    real_build = publisher.build_finding

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        finding = real_build(*args, **kwargs)
        finding["Title"] = "x" * 300
        return finding

    monkeypatch.setattr(publisher, "build_finding", broken)
    record = publisher.stream.write(code_update())
    sizes = count_imports(publisher.securityhub_client())

    response = invoke(publisher, [record])

    assert failed_sequence_numbers(response) == [record["dynamodb"]["SequenceNumber"]]
    assert sizes == []
    assert emitted_metrics(capsys.readouterr().out)["FindingValidationErrors"] == 1
    assert "$.Title" in logged(publisher, caplog)


def test_token_bucket_allows_a_burst_of_30_then_10_per_second(publisher: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(publisher, "clock", lambda: now[0])

    def advance(seconds: float) -> None:
        publisher.sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(publisher, "sleep", advance)
    bucket = publisher.TokenBucket()
    for _ in range(30):
        bucket.acquire()
    assert publisher.sleeps == []
    for _ in range(10):
        bucket.acquire()
    assert sum(publisher.sleeps) == pytest.approx(1.0)


# --- organization mode: two accounts -----------------------------------------------------------------------


def test_member_account_findings_are_imported_into_the_member_account(
    publisher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMBER_FINDINGS_ROLE_NAME", "codewatch-findings")
    records = [
        publisher.stream.write(code_update(account=MEMBER, user_arn=f"arn:aws:iam::{MEMBER}:user/dev")),
        publisher.stream.write(code_update()),
    ]

    assert invoke(publisher, records) == {"batchItemFailures": []}

    [own] = findings(publisher.securityhub_client())
    assert own["AwsAccountId"] == ACCOUNT
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/codewatch-findings", RoleSessionName="check"
    )["Credentials"]
    member_hub = boto3.client(
        "securityhub",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    [member] = findings(member_hub)
    assert member["AwsAccountId"] == MEMBER
    assert member["ProductArn"] == f"arn:aws:securityhub:{REGION}:{MEMBER}:product/{MEMBER}/default"
    assert member["Resources"][0]["Id"].startswith(f"arn:aws:lambda:{REGION}:{MEMBER}:function:")
    # The role's credentials are cached for the container, not assumed per call.
    invoke(publisher, [publisher.stream.write(code_update(account=MEMBER, user_arn=f"arn:aws:iam::{MEMBER}:u"))])
    assert list(publisher._member_clients) == [MEMBER]


def test_member_role_failure_reports_the_records_and_moves_nothing(
    publisher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMBER_FINDINGS_ROLE_NAME", "codewatch-findings")
    record = publisher.stream.write(code_update(account=MEMBER, user_arn=f"arn:aws:iam::{MEMBER}:user/dev"))
    with Stubber(publisher.sts_client()) as stubber:
        stubber.add_client_error("assume_role", "AccessDenied", http_status_code=403)
        response = invoke(publisher, [record])
    assert failed_sequence_numbers(response) == [record["dynamodb"]["SequenceNumber"]]
    assert findings(publisher.securityhub_client()) == []
