"""Parsing the three input shapes, and each normalisation variant on its own."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from codewatch.records import MalformedRecord, iter_records, normalise, parse_flag, resolve_function_arn
from tests.support.cloudtrail import ACCOUNT, REGION, code_update, envelope


def without_response_arn(record: dict[str, Any]) -> dict[str, Any]:
    """The request alone decides the ARN (as on a record whose response was not logged)."""
    record["responseElements"] = None
    return record


# ---------------------------------------------------------------------------------------------- shapes


def test_cloudtrail_file_yields_each_record_with_its_index() -> None:
    records = [code_update(function="a"), code_update(function="b")]
    assert list(iter_records({"Records": records})) == [(0, records[0]), (1, records[1])]


def test_envelope_yields_its_detail() -> None:
    record = code_update()
    assert list(iter_records(envelope(record))) == [(None, record)]


def test_bare_record_yields_itself() -> None:
    record = code_update()
    assert list(iter_records(record)) == [(None, record)]


def test_envelope_of_another_detail_type_is_malformed() -> None:
    with pytest.raises(MalformedRecord, match="detail-type"):
        list(iter_records(envelope(code_update(), detail_type="AWS Service Event via CloudTrail")))


@pytest.mark.parametrize("document", [[1, 2], "text", 3, None])
def test_non_object_document_is_malformed(document: Any) -> None:
    with pytest.raises(MalformedRecord, match="expected a JSON object"):
        list(iter_records(document))


def test_records_that_is_not_a_list_is_malformed() -> None:
    with pytest.raises(MalformedRecord, match="'Records' is dict"):
        list(iter_records({"Records": {}}))


# ---------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["UpdateFunctionCode20150331v2", "UpdateFunctionCode20150331", "UpdateFunctionCode"])
def test_event_name_is_kept_as_logged_with_or_without_version_suffix(name: str) -> None:
    event = normalise(code_update(event_name=name))
    assert event.event_name == name
    assert event.event_source == "lambda.amazonaws.com"


# ---------------------------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        (" False ", False),
        ("yes", None),
        (1, None),
        (None, None),
    ],
)
def test_publish_and_dry_run_accept_strings_and_booleans(value: object, expected: bool | None) -> None:
    assert parse_flag(value) is expected
    record = code_update()
    record["requestParameters"].update(publish=value, dryRun=value)
    event = normalise(record)
    assert event.publish is expected
    assert event.dry_run is expected


def test_missing_publish_and_dry_run_are_none() -> None:
    record = code_update()
    record["requestParameters"] = {"functionName": "f"}
    event = normalise(record)
    assert (event.publish, event.dry_run) == (None, None)


# ---------------------------------------------------------------------------------------------- function


def test_function_name_as_bare_name_gets_an_arn_from_account_and_region() -> None:
    event = normalise(without_response_arn(code_update(function="payments-api")))
    assert event.function_name == "payments-api"
    assert event.function_arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments-api"


def test_function_name_as_full_arn_is_kept_as_logged_and_unqualified_for_the_arn() -> None:
    arn = "arn:aws:lambda:eu-west-1:210987654321:function:billing:prod"
    event = normalise(without_response_arn(code_update(function=arn)))
    assert event.function_name == arn
    assert event.function_arn == "arn:aws:lambda:eu-west-1:210987654321:function:billing"


def test_function_name_as_partial_arn_takes_its_account() -> None:
    event = normalise(without_response_arn(code_update(function="210987654321:function:billing")))
    assert event.function_arn == f"arn:aws:lambda:{REGION}:210987654321:function:billing"


def test_function_name_with_qualifier_drops_it_in_the_arn() -> None:
    event = normalise(without_response_arn(code_update(function="billing:live")))
    assert event.function_arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:billing"


def test_response_function_arn_wins_and_loses_its_version() -> None:
    event = normalise(code_update(function="payments-api"))  # responseElements.functionArn ends in :7
    assert event.function_arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments-api"


def test_fully_qualified_arn_builds_the_arn_when_nothing_else_does() -> None:
    record = without_response_arn(code_update())
    record["requestParameters"] = {
        "fullyQualifiedArn": {
            "arnPrefix": {"account": "266106314375", "partition": "aws", "region": "ap-southeast-2"},
            "functionQualifier": {},
            "relativeId": {"functionName": "olc-func"},
        }
    }
    event = normalise(record)
    assert event.function_name is None
    assert event.function_arn == "arn:aws:lambda:ap-southeast-2:266106314375:function:olc-func"


def test_fully_qualified_arn_with_non_string_parts_falls_back_without_crashing() -> None:
    request = {
        "functionName": "f",
        "fullyQualifiedArn": {"arnPrefix": {"region": 5, "account": []}, "relativeId": {"functionName": "g"}},
    }
    assert (
        resolve_function_arn("f", request, {}, ACCOUNT, "us-east-1") == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:g"
    )
    assert (
        resolve_function_arn(
            None,
            {"fullyQualifiedArn": {"arnPrefix": {"region": 5}, "relativeId": {"functionName": "g"}}},
            {},
            None,
            None,
        )
        is None
    )


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")]
)
def test_partition_follows_the_region(region: str, partition: str) -> None:
    record = without_response_arn(code_update(function="f"))
    record["awsRegion"] = region
    assert normalise(record).function_arn == f"arn:{partition}:lambda:{region}:{ACCOUNT}:function:f"


def test_no_function_at_all_gives_no_arn() -> None:
    record = without_response_arn(code_update())
    record["requestParameters"] = {}
    event = normalise(record)
    assert (event.function_name, event.function_arn) == (None, None)


# ---------------------------------------------------------------------------------------------- absent fields


def test_missing_user_agent_source_ip_and_arn_stay_none() -> None:
    record = code_update(src_ip=None, user_agent=None)
    del record["userIdentity"]["arn"]
    event = normalise(record)
    assert (event.src_ip, event.user_agent, event.user_arn) == (None, None, None)
    assert event.user_type == "IAMUser"


def test_missing_user_identity_gives_an_empty_principal() -> None:
    record = code_update()
    del record["userIdentity"]
    event = normalise(record)
    assert (event.user_type, event.user_arn, event.principal.key_kind) == (None, None, None)


def test_response_elements_null() -> None:
    record = code_update()
    record["responseElements"] = None
    event = normalise(record)
    assert event.code_sha256 is None
    assert event.published_version is None
    assert event.code_source.kind == "zip"


def test_event_time_is_aware_utc() -> None:
    record = code_update(event_time="2026-11-30T12:15:00+02:00")
    assert normalise(record).event_time == datetime(2026, 11, 30, 10, 15, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.pop("eventName"), "eventName"),
        (lambda r: r.update(eventName=""), "eventName"),
        (lambda r: r.update(eventSource=None), "eventSource"),
        (lambda r: r.update(eventTime="yesterday"), "eventTime"),
        (lambda r: r.update(eventTime="2026-11-30T10:15:00"), "eventTime"),
        (lambda r: r.update(eventID=7), "eventID"),
        (lambda r: r.update(errorCode=["x"]), "errorCode"),
        (lambda r: r.update(userIdentity="root"), "userIdentity"),
        (lambda r: r.update(requestParameters=[]), "requestParameters"),
        (lambda r: r.update(sourceIPAddress=1), "sourceIPAddress"),
        (lambda r: r["userIdentity"].update(arn={}), "userIdentity.arn"),
        (lambda r: r["userIdentity"].update(sessionContext=[]), "sessionContext"),
    ],
)
def test_malformed_records_say_why(change: Any, reason: str) -> None:
    record = copy.deepcopy(code_update())
    change(record)
    with pytest.raises(MalformedRecord, match=reason):
        normalise(record)


def test_a_non_object_record_is_malformed() -> None:
    with pytest.raises(MalformedRecord, match="record is list"):
        normalise([])


@pytest.mark.parametrize("moment", ["9999-12-31T23:30:00Z", "1999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_event_times_outside_cloudtrails_range_are_malformed(moment: str) -> None:
    """Window arithmetic near year 9999 would overflow; nothing is logged before CloudTrail existed."""
    with pytest.raises(MalformedRecord, match="out of range"):
        normalise(code_update(event_time=moment))


def test_lone_surrogates_are_kept_as_their_escape_text() -> None:
    """JSON can spell a surrogate no UTF-8 text can hold; it is kept as the logged escape, encodable."""
    record = code_update(user_agent="evil\ud800agent")
    record["requestParameters"]["functionName"] = "fn-\udfff"
    event = normalise(record)
    assert event.user_agent == "evil\\ud800agent"
    assert event.function_name == "fn-\\udfff"
    event.user_agent.encode("utf-8")  # would raise for a lone surrogate
