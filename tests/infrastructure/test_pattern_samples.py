"""The rule pattern from the synthesized template, run through moto's real EventBridge matcher."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from codewatch.pattern import KNOWN_PRINCIPAL_TYPES
from tests.infrastructure.conftest import SAMPLES_DIR, one

pytestmark = pytest.mark.skipif(not SAMPLES_DIR.is_dir(), reason=f"samples not found at {SAMPLES_DIR}")


def envelope(record: dict[str, Any], detail_type: str = "AWS API Call via CloudTrail") -> dict[str, Any]:
    """How EventBridge delivers a CloudTrail record."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "source": "aws.lambda",
        "detail-type": detail_type,
        "account": record.get("recipientAccountId", "111122223333"),
        "time": record.get("eventTime", "2024-08-01T13:52:02Z"),
        "region": record.get("awsRegion", "us-east-1"),
        "resources": [],
        "detail": record,
    }


def load_records(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "Records" in data:
        return data["Records"]
    if isinstance(data, dict) and "eventName" in data:
        return [data]
    if isinstance(data, list):
        return data
    # panther: {rule: {"tests": [{"Log": record}, ...]}}
    return [case["Log"] for rule in data.values() for case in rule["tests"]]


def matcher(template: dict[str, Any]) -> EventPattern:
    _, rule = one(template, "AWS::Events::Rule", "DefaultBusRule")
    return EventPattern.load(json.dumps(rule["Properties"]["EventPattern"]))


@pytest.fixture(scope="module")
def pattern(detection: dict[str, Any]) -> EventPattern:
    return matcher(detection)


def matches(pattern: EventPattern, record: dict[str, Any], **kwargs: Any) -> bool:
    return bool(pattern.matches_event(envelope(record, **kwargs)))


def attack() -> dict[str, Any]:
    """The stratus overwrite-code detonation: the attack the product exists for."""
    (record,) = load_records(SAMPLES_DIR / "stratus_lambda_overwrite_code_detonation.json")
    return record


def test_every_sample_file_is_read() -> None:
    files = sorted(SAMPLES_DIR.glob("*.json"))
    assert len(files) >= 6
    for path in files:
        assert load_records(path), path.name


def test_sample_verdicts(pattern: EventPattern) -> None:
    """Each file's records: only successful UpdateFunctionCode* by a non-service principal match."""
    for path in sorted(SAMPLES_DIR.glob("*.json")):
        for index, record in enumerate(load_records(path)):
            expected = (
                record.get("eventSource") == "lambda.amazonaws.com"
                and record.get("eventName", "").startswith("UpdateFunctionCode")
                and "errorCode" not in record
                and record.get("userIdentity", {}).get("type") not in (None, "AWSService")
            )
            assert matches(pattern, record) is expected, f"{path.name}[{index}] {record.get('eventName')}"


def test_stratus_overwrite_code_matches(pattern: EventPattern) -> None:
    assert matches(pattern, attack())


@pytest.mark.parametrize(
    "name",
    [
        "stratus_lambda_layer_extension_detonation.json",
        "stratus_lambda_backdoor_function_detonation.json",
        "elastic_integrations_createfunction_awscli.json",
        "aws_docs_lambda_accessdenied_and_delete.json",
    ],
)
def test_neighbouring_samples_do_not_match(pattern: EventPattern, name: str) -> None:
    for record in load_records(SAMPLES_DIR / name):
        assert not matches(pattern, record), record["eventName"]


@pytest.mark.parametrize(
    "event_name", ["UpdateFunctionCode", "UpdateFunctionCode20150331", "UpdateFunctionCode20150331v2"]
)
def test_suffixed_and_bare_names_match(pattern: EventPattern, event_name: str) -> None:
    assert matches(pattern, {**attack(), "eventName": event_name})


@pytest.mark.parametrize("principal_type", [t for t in KNOWN_PRINCIPAL_TYPES if t != "AWSService"])
def test_every_default_principal_type_matches(pattern: EventPattern, principal_type: str) -> None:
    record = attack()
    record["userIdentity"]["type"] = principal_type
    assert matches(pattern, record)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"eventName": "UpdateFunctionConfiguration20150331v2"}, "configuration change"),
        ({"eventName": "UpdateFunctionConfiguration"}, "configuration change, bare"),
        ({"eventName": "CreateFunction20150331"}, "create"),
        ({"eventName": "AddPermission20150331v2"}, "permission"),
        ({"eventName": "updatefunctioncode20150331v2"}, "case differs"),
        ({"errorCode": "AccessDenied", "errorMessage": "denied"}, "failed call"),
        ({"errorCode": None}, "errorCode present even if null"),
        ({"eventSource": "lambda-edge.amazonaws.com"}, "other event source"),
        ({"userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}}, "service principal"),
        ({"userIdentity": {}}, "no principal type"),
    ],
)
def test_variants_that_must_not_match(pattern: EventPattern, change: dict[str, Any], why: str) -> None:
    record = {**copy.deepcopy(attack()), **change}
    assert not matches(pattern, record), why


@pytest.mark.parametrize(
    "detail_type",
    ["AWS Service Event via CloudTrail", "AWS API Call via CloudTrail ", "Lambda Function Invocation Result"],
)
def test_other_detail_types_do_not_match(pattern: EventPattern, detail_type: str) -> None:
    assert not matches(pattern, attack(), detail_type=detail_type)


def test_other_sources_do_not_match(pattern: EventPattern) -> None:
    event = envelope(attack())
    event["source"] = "custom.lambda"
    assert not pattern.matches_event(event)


def test_explicit_principal_types_from_configuration(tmp_path: Path) -> None:
    """``principal_types: IAMUser`` reproduces the seed; a list admits exactly its members."""
    from tests.infrastructure.conftest import synthesize

    synth = synthesize({"principal_types": ["IAMUser", "Root", "FederatedUser"]}, tmp_path)
    explicit = matcher(synth.template("Codewatch"))
    for principal_type in KNOWN_PRINCIPAL_TYPES:
        record = attack()
        record["userIdentity"]["type"] = principal_type
        assert matches(explicit, record) is (principal_type in ("IAMUser", "Root", "FederatedUser")), principal_type
