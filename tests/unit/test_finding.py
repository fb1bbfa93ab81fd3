"""The finding builder: a window summary in, one ASFF finding out, valid against Security Hub's model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codewatch.aggregate import AggregationKey
from codewatch.asff import validate_finding
from codewatch.enrich import RISK_ADJUSTMENTS, enrich
from codewatch.finding import (
    CONFIDENCE,
    CRITICALITY,
    GENERATOR_ID,
    RUNBOOK_URL,
    SPLUNK_DETECTION_ID,
    build_finding,
    finding_id,
)
from codewatch.records import normalise
from codewatch.timeutil import format_time_ms
from codewatch.window_item import WindowSummary
from tests.support.cloudtrail import code_update

ACCOUNT = "123456789012"
MEMBER = "210987654321"
START = datetime(2026, 11, 30, 10, tzinfo=UTC)
# What must never appear raw in a finding: C0/C1 controls, line and paragraph separators, bidi overrides,
# zero-width characters, lone surrogates (the set codewatch.sanitize escapes).
# The enrichment a window item carries (``facts`` in docs/internals.md), read through ``WindowSummary.values``.
FACTS = (
    "function_arns",
    "code_sha256",
    "code_sources",
    "ua_classes",
    "source_classes",
    "risk_reasons",
    "published_versions",
    "key_kinds",
    "session_issuers",
    "invoked_by",
    "mfa",
    "regions",
    "suppressed_by",
    "allowlist_errors",
)
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def summary(
    *,
    src_ip: str | None = "198.51.100.7",
    user_arn: str | None = f"arn:aws:iam::{MEMBER}:user/dev",
    user_agent: str | None = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1",
    user_type: str | None = "IAMUser",
    event_name: str = "UpdateFunctionCode20150331v2",
    account: str | None = MEMBER,
    functions: tuple[str, ...] = ("payments-api",),
    arns: tuple[str, ...] | None = None,
    count: int = 3,
    risk_score: int = 63,
    sets: dict[str, tuple[str, ...]] | None = None,
    window_start: datetime = START,
    pk: str = "K#0123456789abcdef0123456789abcdef",
) -> WindowSummary:
    if arns is None:
        arns = tuple(f"arn:aws:lambda:us-east-1:{account or MEMBER}:function:{name}" for name in functions)
    values: dict[str, tuple[str, ...]] = {name: () for name in FACTS}
    values.update(function_arns=tuple(sorted(arns)), code_sha256=("c2hhMjU2LWNvZGU=",), published_versions=("7",))
    values.update(sets or {})
    return WindowSummary(
        pk=pk,
        sk=f"W#{window_start:%Y-%m-%dT%H:%M:%SZ}",
        key=AggregationKey(src_ip, user_arn, user_agent, user_type, event_name, account),
        window_start=window_start,
        window_end=window_start + timedelta(hours=1),
        count=count,
        first_time=window_start + timedelta(minutes=15),
        last_time=window_start + timedelta(minutes=40),
        function_updated=tuple(sorted(functions)),
        risk_score=risk_score,
        suppressed_count=0,
        created_at="2026-11-30T10:15:01.123Z",
        updated_at="2026-11-30T10:40:02.456Z",
        expires_at=None,
        sets=values,
    )


def build(item: WindowSummary, **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "account_id": ACCOUNT,
        "region": "us-east-1",
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }
    arguments.update(kwargs)
    return build_finding(item, **arguments)


def strings(value: Any) -> Iterator[str]:
    """Every key and string value in a finding."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from strings(inner)


def assert_safe_and_valid(finding: dict[str, Any]) -> None:
    assert validate_finding(finding) == []
    for text in strings(finding):
        assert not UNSAFE.search(text), text


# --- identity, product and provider fields ---------------------------------------------------------------


def test_identity_product_and_provider_fields() -> None:
    finding = build(summary())
    assert finding["SchemaVersion"] == "2018-10-08"
    assert finding["Id"] == "codewatch/lambda-code-update/K#0123456789abcdef0123456789abcdef/2026-11-30T10:00:00Z"
    assert finding["ProductArn"] == f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default"
    assert finding["AwsAccountId"] == ACCOUNT  # the importing account; the member account is in Resources
    assert finding["GeneratorId"] == GENERATOR_ID
    assert finding["CompanyName"] == finding["ProductName"] == "codewatch"
    assert finding["Types"][0] == "TTPs/Execution/T1204-User Execution"
    assert finding["FindingProviderFields"]["Types"] == finding["Types"]
    assert finding["Confidence"] == finding["FindingProviderFields"]["Confidence"] == CONFIDENCE == 90
    assert finding["Criticality"] == finding["FindingProviderFields"]["Criticality"] == CRITICALITY == 70
    assert finding["CreatedAt"] == "2026-11-30T10:15:01.123Z"
    assert finding["UpdatedAt"] == "2026-11-30T10:40:02.456Z"
    assert finding["FirstObservedAt"] == "2026-11-30T10:15:00Z"
    assert finding["LastObservedAt"] == "2026-11-30T10:40:00Z"
    assert finding["RecordState"] == "ACTIVE"
    assert "Workflow" not in finding  # Security Hub owns the workflow; an import must not reset it
    assert finding["Remediation"]["Recommendation"]["Url"] == RUNBOOK_URL
    assert finding["ProductFields"]["detection/splunk_id"] == SPLUNK_DETECTION_ID
    assert_safe_and_valid(finding)


def test_other_partitions_and_runbook_urls() -> None:
    finding = build(summary(), partition="aws-cn", region="cn-north-1", runbook_url="https://wiki.example/rb")
    assert finding["ProductArn"] == f"arn:aws-cn:securityhub:cn-north-1:{ACCOUNT}:product/{ACCOUNT}/default"
    assert finding["Remediation"]["Recommendation"]["Url"] == "https://wiki.example/rb"


def test_id_is_stable_per_key_and_window() -> None:
    assert finding_id(summary(count=1)) == finding_id(summary(count=900, functions=("a", "b")))
    assert finding_id(summary()) != finding_id(summary(window_start=START + timedelta(hours=1)))
    assert finding_id(summary()) != finding_id(summary(pk="K#ffffffffffffffffffffffffffffffff"))


# --- severity and risk -----------------------------------------------------------------------------------


SEVERITY_BANDS = [(1, "LOW"), (39, "LOW"), (40, "MEDIUM"), (63, "MEDIUM"), (69, "MEDIUM")]
SEVERITY_BANDS += [(70, "HIGH"), (89, "HIGH"), (90, "CRITICAL"), (100, "CRITICAL")]


@pytest.mark.parametrize(("score", "label"), SEVERITY_BANDS)
def test_severity_bands(score: int, label: str) -> None:
    finding = build(summary(risk_score=score))
    assert finding["Severity"] == {"Label": label, "Original": str(score)}
    assert finding["FindingProviderFields"]["Severity"] == finding["Severity"]
    assert finding["ProductFields"]["risk/score"] == str(score)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"user_type": "Root", "user_arn": f"arn:aws:iam::{MEMBER}:root"}, "root-principal"),
        ({"user_agent": "aws-cli/2.15.0 Python/3.11 Linux/6.6.9-amd64 kali"}, "pentest-user-agent"),
        (
            {"src_ip": "cloudformation.amazonaws.com", "user_agent": "cloudformation.amazonaws.com"},
            "via-cloudformation",
        ),
    ],
)
def test_enrichment_adjustments_reach_the_finding(overrides: dict[str, Any], reason: str) -> None:
    event = normalise(code_update(**overrides))
    enrichment = enrich(event)
    assert reason in enrichment.risk_reasons
    item = summary(
        src_ip=event.src_ip,
        user_agent=event.user_agent,
        user_type=event.user_type,
        user_arn=event.user_arn,
        risk_score=enrichment.risk_score,
        sets={"risk_reasons": enrichment.risk_reasons, "ua_classes": (enrichment.user_agent_class,)},
    )
    finding = build(item)
    delta, why = RISK_ADJUSTMENTS[reason]
    assert f"{reason} ({delta:+d}: {why})" in finding["Description"]
    assert reason in json.loads(finding["ProductFields"]["risk/reasons"])
    assert finding["Severity"]["Original"] == str(enrichment.risk_score)
    if delta > 0:
        assert enrichment.risk_score > 63
    else:
        assert enrichment.risk_score < 63
    assert_safe_and_valid(finding)


# --- text ------------------------------------------------------------------------------------------------


def test_description_carries_the_seed_message_counts_and_window() -> None:
    description = build(summary())["Description"]
    assert description.startswith(
        f"User arn:aws:iam::{MEMBER}:user/dev is attempting to update the lambda function code of "
        "payments-api from this IP 198.51.100.7."
    )
    assert "3 UpdateFunctionCode20150331v2 call(s) by IAMUser in account 210987654321" in description
    assert "between 2026-11-30T10:15:00Z and 2026-11-30T10:40:00Z" in description
    assert "window 2026-11-30T10:00:00Z to 2026-11-30T11:00:00Z" in description
    assert "Risk 63 (MEDIUM): no adjustment applied" in description


def test_allowlist_unavailable_says_the_detector_failed_open() -> None:
    finding = build(
        summary(
            user_agent="x" * 10_000,
            functions=tuple(f"fn-{i:03d}-{'y' * 50}" for i in range(500)),
            sets={"allowlist_errors": ("parameter /codewatch/allowlist not found",)},
        )
    )
    assert "ALLOWLIST UNAVAILABLE" in finding["Description"]
    assert "failed open" in finding["Description"]
    assert "parameter /codewatch/allowlist not found" in finding["Description"]
    assert finding["ProductFields"]["allowlist/status"] == "unavailable: failed open"
    assert json.loads(finding["ProductFields"]["allowlist/errors"]) == ["parameter /codewatch/allowlist not found"]
    assert "allowlist/errors" not in build(summary())["ProductFields"]
    assert_safe_and_valid(finding)


def test_a_10kb_user_agent_and_500_functions_are_cut_with_markers() -> None:
    names = tuple(f"function-{i:03d}" for i in range(500))
    finding = build(summary(user_agent="Mozilla/5.0 " + "A" * 10_000, functions=names))
    fields = finding["ProductFields"]

    assert len(finding["Title"]) <= 256
    assert "500 functions" in finding["Title"]
    assert len(finding["Description"]) <= 1024
    assert "and 4" in finding["Description"]  # "a, b, ... and 4xx more"
    assert "468 more function(s) beyond the 32" in finding["Description"]
    assert len(fields["codewatch/user_agent"]) == 2048
    assert fields["codewatch/user_agent"].startswith("Mozilla/5.0 AAAA")
    assert re.search(r"…\[truncated \d+ chars\]$", fields["codewatch/user_agent"])
    listed = json.loads(fields["codewatch/function_updated"])  # still valid JSON
    assert len(fields["codewatch/function_updated"]) <= 2048
    assert listed[:-1] == list(names[: len(listed) - 1])
    assert listed[-1] == f"…[truncated: {500 - (len(listed) - 1)} more items]"
    assert len(finding["Resources"]) == 32
    assert fields["resources/omitted_count"] == "468"
    assert all(len(value) <= 2048 for value in fields.values())
    assert_safe_and_valid(finding)


def test_unicode_quotes_and_control_characters_are_escaped_everywhere() -> None:
    hostile = "evil\"'`\x00\x1b[31m\r\nFAKE LOG LINE\u202eexe.txt\u2028\x85\ud800 😈 Grüße"
    item = summary(
        user_agent=hostile,
        user_arn=f"arn:aws:iam::{MEMBER}:user/{hostile}",
        src_ip=hostile,
        functions=(hostile, "ok"),
        arns=(f"arn:aws:lambda:us-east-1:{MEMBER}:function:{hostile}",),
        sets={"session_issuers": (hostile,), "code_sources": (f"s3://bucket/{hostile}",)},
    )
    finding = build(item)
    assert_safe_and_valid(finding)
    fields = finding["ProductFields"]
    assert fields["codewatch/user_agent"] == (
        "evil\"'`\\u0000\\u001b[31m\\u000d\\u000aFAKE LOG LINE\\u202eexe.txt\\u2028\\u0085\\ud800 😈 Grüße"
    )
    # JSON lists decode back to exactly the logged values.
    assert json.loads(fields["codewatch/function_updated"]) == sorted([hostile, "ok"])
    assert json.loads(fields["actor/session_issuers"]) == [hostile]
    assert "RemoteIpDetails" not in finding["Action"]["AwsApiCallAction"]
    assert "😈 Grüße" in finding["Description"]


def test_blank_values_stay_visible() -> None:
    finding = build(summary(user_agent="   ", functions=(" ",), arns=()))
    assert finding["ProductFields"]["codewatch/user_agent"] == "\\u0020\\u0020\\u0020"
    assert_safe_and_valid(finding)


# --- ProductFields: the hunt row, exactly ----------------------------------------------------------------


def test_product_fields_hold_the_hunt_row_exactly() -> None:
    item = summary(functions=("b-fn", "a-fn"), count=12)
    fields = build(item)["ProductFields"]
    hunt = {key: value for key, value in fields.items() if key.startswith("codewatch/")}
    assert hunt == {
        "codewatch/src_ip": "198.51.100.7",
        "codewatch/user_arn": f"arn:aws:iam::{MEMBER}:user/dev",
        "codewatch/user_agent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1",
        "codewatch/user_type": "IAMUser",
        "codewatch/eventName": "UpdateFunctionCode20150331v2",
        "codewatch/aws_account_id": MEMBER,
        "codewatch/count": "12",
        "codewatch/firstTime": "2026-11-30T10:15:00Z",
        "codewatch/lastTime": "2026-11-30T10:40:00Z",
        "codewatch/function_updated": '["a-fn", "b-fn"]',
        "codewatch/window_start": "2026-11-30T10:00:00Z",
        "codewatch/window_end": "2026-11-30T11:00:00Z",
    }
    assert json.loads(hunt["codewatch/function_updated"]) == item.hunt_row()["function_updated"]
    assert len(fields) <= 50


def test_null_fields_are_left_out() -> None:
    fields = build(summary(src_ip=None, user_agent=None, user_arn=None, account=None))["ProductFields"]
    for name in ("src_ip", "user_agent", "user_arn", "aws_account_id"):
        assert f"codewatch/{name}" not in fields


def test_annotations() -> None:
    item = summary(
        sets={
            "code_sources": ("s3://releases/payments.zip?versionId=3",),
            "session_issuers": ("arn:aws:iam::210987654321:role/Deploy",),
            "invoked_by": ("cloudformation.amazonaws.com",),
            "mfa": ("false",),
            "regions": ("us-east-1",),
            "key_kinds": ("temporary",),
            "ua_classes": ("aws-cli",),
            "source_classes": ("ipv4-public",),
        }
    )
    fields = build(item)["ProductFields"]
    assert fields["mitre/technique"] == "T1204 User Execution"
    assert fields["mitre/tactic"] == "TA0002 Execution"
    assert fields["kill_chain"] == "Actions on Objectives"
    assert fields["nist_csf"] == "PR.DS, PR.AC, DE.CM"
    assert fields["cis_controls"] == "CIS 13"
    assert json.loads(fields["code/sha256"]) == ["c2hhMjU2LWNvZGU="]
    assert json.loads(fields["code/sources"]) == ["s3://releases/payments.zip?versionId=3"]
    assert json.loads(fields["actor/session_issuers"]) == ["arn:aws:iam::210987654321:role/Deploy"]
    assert json.loads(fields["actor/invoked_by"]) == ["cloudformation.amazonaws.com"]
    assert json.loads(fields["actor/mfa"]) == ["false"]
    assert json.loads(fields["resources/function_arns"]) == [f"arn:aws:lambda:us-east-1:{MEMBER}:function:payments-api"]


# --- resources and action --------------------------------------------------------------------------------


def test_one_lambda_resource_per_function_arn_with_code_hash_when_attributable() -> None:
    [resource] = build(summary())["Resources"]
    assert resource == {
        "Type": "AwsLambdaFunction",
        "Id": f"arn:aws:lambda:us-east-1:{MEMBER}:function:payments-api",
        "Partition": "aws",
        "Region": "us-east-1",
        "ResourceRole": "Target",
        "Details": {
            "AwsLambdaFunction": {"FunctionName": "payments-api", "CodeSha256": "c2hhMjU2LWNvZGU=", "Version": "7"}
        },
    }
    # Two functions: the item's sets cannot say which hash belongs to which, so none is claimed.
    resources = build(summary(functions=("a", "b")))["Resources"]
    assert [r["Details"]["AwsLambdaFunction"] for r in resources] == [{"FunctionName": "a"}, {"FunctionName": "b"}]


def test_without_an_arn_the_function_is_named_in_an_other_resource() -> None:
    [resource] = build(summary(functions=("legacy-fn",), arns=()))["Resources"]
    assert resource["Type"] == "Other"
    assert resource["Id"] == f"lambda-function:{MEMBER}:legacy-fn"
    assert json.loads(resource["Details"]["Other"]["FunctionNames"]) == ["legacy-fn"]
    [unknown] = build(summary(functions=(), arns=(), account=None))["Resources"]
    assert unknown["Id"] == "lambda-function:unknown-account:unknown-function"


@pytest.mark.parametrize(
    ("src_ip", "expected"),
    [
        ("198.51.100.7", {"CallerType": "remoteip", "RemoteIpDetails": {"IpAddressV4": "198.51.100.7"}}),
        ("2001:db8::1", {}),
        (
            "cloudformation.amazonaws.com",
            {"CallerType": "domain", "DomainDetails": {"Domain": "cloudformation.amazonaws.com"}},
        ),
        ("AWS Internal", {}),
        (None, {}),
    ],
)
def test_action_names_the_api_and_the_caller(src_ip: str | None, expected: dict[str, Any]) -> None:
    action = build(summary(src_ip=src_ip))["Action"]
    assert action["ActionType"] == "AWS_API_CALL"
    assert action["AwsApiCallAction"] == {
        "Api": "UpdateFunctionCode20150331v2",
        "ServiceName": "lambda.amazonaws.com",
        "FirstSeen": "2026-11-30T10:15:00Z",
        "LastSeen": "2026-11-30T10:40:00Z",
        **expected,
    }


# --- property: any window item gives a valid, safe finding -----------------------------------------------

ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)
LONG_TEXT = st.one_of(ANY_TEXT, st.text(max_size=5000))
ARN = st.builds(
    lambda partition, region, account, name: f"arn:{partition}:lambda:{region}:{account}:function:{name}",
    st.sampled_from(["aws", "aws-cn", "aws-us-gov", "aws-iso-x"]),
    st.from_regex(r"[a-z0-9-]{1,30}", fullmatch=True),
    st.from_regex(r"\d{12}", fullmatch=True),
    st.text(alphabet=st.characters(exclude_characters=":"), min_size=1, max_size=80),
)


@st.composite
def window_summaries(draw: st.DrawFn) -> WindowSummary:
    start = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)))
    start = start.replace(minute=0, second=0, microsecond=0)
    offsets = sorted(draw(st.lists(st.integers(0, 3599), min_size=0, max_size=2)))
    sets = {name: tuple(sorted(set(draw(st.lists(ANY_TEXT, max_size=4))))) for name in FACTS}
    sets["function_arns"] = tuple(sorted(set(draw(st.lists(st.one_of(ARN, ANY_TEXT), max_size=40)))))
    created = start + timedelta(milliseconds=draw(st.integers(0, 10**7)))
    return WindowSummary(
        pk=draw(st.one_of(st.just("K#0123456789abcdef0123456789abcdef"), ANY_TEXT)),
        sk="W#x",
        key=AggregationKey(
            draw(st.none() | ANY_TEXT),
            draw(st.none() | LONG_TEXT),
            draw(st.none() | LONG_TEXT),
            draw(st.none() | ANY_TEXT),
            draw(ANY_TEXT),
            draw(st.none() | ANY_TEXT),
        ),
        window_start=start,
        window_end=start + timedelta(hours=1),
        count=draw(st.integers(1, 10**6)),
        first_time=start + timedelta(seconds=offsets[0]) if offsets else None,
        last_time=start + timedelta(seconds=offsets[-1]) if offsets else None,
        function_updated=tuple(sorted(set(draw(st.lists(LONG_TEXT, max_size=60))))),
        risk_score=draw(st.integers(-5, 200)),
        suppressed_count=0,
        created_at=format_time_ms(created),
        updated_at=format_time_ms(created + timedelta(milliseconds=draw(st.integers(0, 10**6)))),
        expires_at=None,
        sets=sets,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window_summaries())
def test_any_window_item_yields_a_valid_safe_finding(item: WindowSummary) -> None:
    finding = build(item)
    assert_safe_and_valid(finding)
    assert finding["Id"] == finding_id(item)
    assert 1 <= len(finding["Resources"]) <= 32
    assert len(finding["ProductFields"]) <= 50
