"""Validation against the botocore ``securityhub`` model plus the documented ASFF limits it does not encode."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from codewatch import asff
from codewatch.aggregate import AggregationKey
from codewatch.finding import build_finding
from codewatch.window_item import WindowSummary

START = datetime(2026, 11, 30, 10, tzinfo=UTC)


def valid_finding() -> dict[str, Any]:
    item = WindowSummary(
        pk="K#0123456789abcdef0123456789abcdef",
        sk="W#2026-11-30T10:00:00Z",
        key=AggregationKey(
            "198.51.100.7",
            "arn:aws:iam::123456789012:user/dev",
            "aws-cli/2",
            "IAMUser",
            "UpdateFunctionCode20150331v2",
            "123456789012",
        ),
        window_start=START,
        window_end=START + timedelta(hours=1),
        count=2,
        first_time=START + timedelta(minutes=1),
        last_time=START + timedelta(minutes=2),
        function_updated=("a", "b"),
        risk_score=63,
        suppressed_count=0,
        created_at="2026-11-30T10:01:00.000Z",
        updated_at="2026-11-30T10:02:00.000Z",
        expires_at=None,
        sets={"function_arns": ("arn:aws:lambda:us-east-1:123456789012:function:a",)},
    )
    return build_finding(
        item,
        account_id="123456789012",
        region="us-east-1",
        created_at="2026-11-30T10:01:00.000Z",
        updated_at="2026-11-30T10:02:00.000Z",
    )


def problems_after(change: Any) -> list[str]:
    finding = copy.deepcopy(valid_finding())
    change(finding)
    return asff.validate_finding(finding)


def test_a_built_finding_is_valid() -> None:
    assert asff.validate_finding(valid_finding()) == []
    assert asff.validate_findings([valid_finding()] * 3) == []


def test_the_model_is_loaded_once_and_kept() -> None:
    assert asff.finding_shape() is asff.finding_shape()
    assert asff.finding_shape().name == "AwsSecurityFinding"
    client_model = boto3.client("securityhub", region_name="us-east-1").meta.service_model
    assert asff.finding_shape(client_model).name == "AwsSecurityFinding"
    assert asff.validate_finding(valid_finding(), client_model) == []


def test_required_members() -> None:
    problems = problems_after(lambda f: [f.pop(name) for name in ("Title", "Resources", "UpdatedAt")])
    assert "$: missing required member Title" in problems
    assert "$: missing required member Resources" in problems
    assert "$: missing required member UpdatedAt" in problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.update(Title="x" * 257), "$.Title: length 257 is over the maximum 256"),
        (lambda f: f.update(Title="😈" * 200), "$.Title: length 400 is over the maximum 256"),  # UTF-16 units
        (lambda f: f.update(Description="x" * 1025), "$.Description: length 1025 is over the maximum 1024"),
        (lambda f: f.update(Id="i" * 513), "$.Id: length 513 is over the maximum 512"),
        (lambda f: f.update(GeneratorId="g" * 513), "$.GeneratorId: length 513 is over the maximum 512"),
        (lambda f: f.update(Resources=[]), "$.Resources: has 0 items, fewer than 1"),
        (lambda f: f.update(Resources=f["Resources"] * 33), "$.Resources: has 33 items, more than 32"),
        (
            lambda f: f["ProductFields"].update({f"k{i}": "v" for i in range(51 - len(f["ProductFields"]))}),
            "$.ProductFields: has 51 items, more than 50",
        ),
        (
            lambda f: f["ProductFields"].update(big="v" * 2049),
            "$.ProductFields['big']: length 2049 is over the maximum 2048",
        ),
        (
            lambda f: f["ProductFields"].update({"k" * 129: "v"}),
            f"$.ProductFields[{'k' * 64!r}]: key is longer than 128",
        ),
        (lambda f: f["ProductFields"].update(blank="  "), "$.ProductFields['blank']: does not match the model pattern"),
        (lambda f: f.update(Title="line\nbreak"), "$.Title: does not match the model pattern"),
        (lambda f: f["Resources"][0].update(Partition="mars"), "$.Resources[0].Partition: 'mars' is not one of"),
        (
            lambda f: f["Resources"][0].update(Region="r" * 17),
            "$.Resources[0].Region: length 17 is over the maximum 16",
        ),
        (lambda f: f["Resources"][0].pop("Type"), "$.Resources[0]: missing required member Type"),
        (lambda f: f["Severity"].update(Label="SEVERE"), "$.Severity.Label: 'SEVERE' is not one of"),
        (lambda f: f.update(Confidence=101), "$.Confidence: 101 is over the maximum 100"),
        (lambda f: f.update(Criticality=True), "$.Criticality: expected an integer, got bool"),
        (
            lambda f: f["FindingProviderFields"].update(Confidence=-1),
            "$.FindingProviderFields.Confidence: -1 is under the minimum 0",
        ),
        (lambda f: f.update(Colour="red"), "$.Colour: unknown member of AwsSecurityFinding"),
        (lambda f: f.update(Types="TTPs"), "$.Types: expected a list, got str"),
        (lambda f: f.update(Types=["Attacks/Execution/X"]), "$.Types[0]: must be namespace"),
        (lambda f: f.update(Types=["TTPs/a/b/c"]), "$.Types[0]: must be namespace"),
        (lambda f: f.update(AwsAccountId="12345"), "$.AwsAccountId: must be a 12-digit account ID"),
        (lambda f: f.update(SchemaVersion="2020-01-01"), "$.SchemaVersion: must be 2018-10-08"),
        (lambda f: f.update(CreatedAt="30/11/2026"), "$.CreatedAt: is not a Security Hub timestamp"),
        (lambda f: f.update(UpdatedAt="2026-11-30T09:00:00Z"), "$.UpdatedAt: is earlier than CreatedAt"),
        (
            lambda f: f.update(LastObservedAt="2026-11-30T09:00:00Z"),
            "$.LastObservedAt: is earlier than FirstObservedAt",
        ),
        (
            lambda f: f["Action"]["AwsApiCallAction"].update(RemoteIpDetails={"IpAddressV4": "2001:db8::1"}),
            "$.Action.AwsApiCallAction.RemoteIpDetails.IpAddressV4: is not an IPv4 address",
        ),
        (lambda f: f["Action"]["AwsApiCallAction"].update(Api="A" * 129), "$.Action.AwsApiCallAction.Api: length 129"),
        (
            lambda f: f["Remediation"]["Recommendation"].update(Text="t" * 513),
            "$.Remediation.Recommendation.Text: length 513 is over the maximum 512",
        ),
        (
            lambda f: f["Resources"].append({"Type": "Other", "Id": "x", "Details": {"Other": {"k": "v" * 1024}}}),
            "$.Resources[1].Details.Other['k']: length 1024 is over the maximum 1023",
        ),
        (
            lambda f: [f["Severity"].pop("Label"), f["FindingProviderFields"]["Severity"].pop("Label")],
            "$.Severity: needs a Label",
        ),
    ],
)
def test_each_rule_reports_a_json_path(change: Any, expected: str) -> None:
    problems = problems_after(change)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_timestamps_in_every_documented_form_are_accepted() -> None:
    for stamp in (
        "2019-01-31T23:00:00Z",
        "2019-01-31T23:00:00.123456789Z",
        "2024-01-04T15:25:10+17:59",
        "2024-01-04T15:25:10-1759",
        "2024-01-04T15:25:10.123456789+17:59",
    ):
        assert not [p for p in problems_after(lambda f, s=stamp: f.update(ProcessedAt=s)) if "ProcessedAt" in p]


def test_a_limit_stated_twice_is_reported_once() -> None:
    problems = problems_after(lambda f: f.update(Resources=[]))
    assert problems.count("$.Resources: has 0 items, fewer than 1") == 1


def test_documented_limits_are_read_from_the_model_documentation() -> None:
    assert asff._documented("<p>Length Constraints: Minimum length of 1. Maximum length of 16.</p>") == ((1, 16), None)
    assert asff._documented("<p>Length Constraints: Minimum of 1 length. Maximum of 512 length.</p>")[0] == (1, 512)
    assert asff._documented("<p>Length Constraints: 128.</p>")[0] == (0, 128)
    assert asff._documented("<p>Array Members: Maximum number of 50 items.</p>")[1] == (0, 50)
    assert asff._documented(None) == (None, None)


def test_a_whole_request() -> None:
    assert asff.validate_findings([]) == ["$: 0 findings; BatchImportFindings takes 1 to 100"]
    assert asff.validate_findings([valid_finding()] * 101)[0] == "$: 101 findings; BatchImportFindings takes 1 to 100"
    bad = valid_finding()
    bad["Title"] = ""
    assert asff.validate_findings([valid_finding(), bad])[0].startswith("[1].Title: length 0 is under the minimum 1")


def test_a_finding_over_240_kb_is_refused() -> None:
    problems = problems_after(lambda f: f["ProductFields"].update({f"k{i}": "v" * 2048 for i in range(120)}))
    assert any(p.startswith("$: is ") and "over 245760" in p for p in problems), problems


def test_not_an_object() -> None:
    assert asff.validate_finding(["not", "a", "finding"]) == ["$: expected an object, got list"]
