"""Every public sample gets the verdict DESIGN.md implies, through the same code hunt and the Lambda run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codewatch.match import rule
from codewatch.pattern import parse_principal_types
from codewatch.records import iter_records, normalise

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


def records_of(name: str) -> list[dict[str, Any]]:
    document = json.loads((SAMPLES / name).read_text())
    documents = document if isinstance(document, list) else [document]
    return [record for doc in documents for _, record in iter_records(doc)]


def panther_cases() -> list[tuple[str, str, dict[str, Any]]]:
    document = json.loads((SAMPLES / "panther_lambda_rule_test_cases.json").read_text())
    return [(rule_name, case["Name"], case["Log"]) for rule_name, spec in document.items() for case in spec["tests"]]


def test_stratus_overwrite_code_matches() -> None:
    records = records_of("stratus_lambda_overwrite_code_detonation.json")
    assert [rule(record) for record in records] == [True]
    event = normalise(records[0])
    assert event.event_name == "UpdateFunctionCode20150331v2"
    assert event.user_type == "IAMUser"
    assert event.publish is True
    assert (
        event.function_arn == "arn:aws:lambda:ap-westeast-2r:266106314375:function:stratus-red-team-olc-func-vayhjqkdav"
    )
    # the seed's IAMUser-only selection catches it too
    assert rule(records[0], parse_principal_types("IAMUser"))


@pytest.mark.parametrize(
    "name",
    [
        "stratus_lambda_layer_extension_detonation.json",  # UpdateFunctionConfiguration
        "stratus_lambda_backdoor_function_detonation.json",  # AddPermission
        "elastic_integrations_createfunction_awscli.json",  # CreateFunction
        "aws_docs_lambda_accessdenied_and_delete.json",  # a failed GetFunction and a DeleteFunction
    ],
)
def test_neighbouring_calls_do_not_match(name: str) -> None:
    records = records_of(name)
    assert records
    assert not any(rule(record) for record in records)
    assert not any(rule(record, parse_principal_types("all")) for record in records)
    for record in records:
        normalise(record)  # every sample is well-formed


# Panther's verdicts differ from ours on purpose: it ignores plain AssumedRole sessions ("normal CI/CD");
# a stolen role session looks the same, so codewatch matches every UpdateFunctionCode by a covered type.
OUR_VERDICT = {
    "IAM User Updates Lambda Code": True,
    "AssumedRole Updates Lambda Code (Normal CI/CD)": True,
    "SSO AssumedRole Updates Lambda Code": True,
    "FederatedUser Updates Lambda Code": True,
    "AssumedRole Updates Lambda Code v2 (Normal CI/CD)": True,
    "Delete Function Event": False,
    "Lambda DeleteFunction Unauthorized Account": False,
    "Lambda DeleteFunction Unauthorized User": False,
    "Lambda DeleteFunction Authorized Account": False,
}


@pytest.mark.parametrize(
    ("rule_name", "case", "log"), panther_cases(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_panther_cases(rule_name: str, case: str, log: dict[str, Any]) -> None:
    assert rule(log) is OUR_VERDICT[case], f"{rule_name}: {case}"
    if OUR_VERDICT[case]:
        assert normalise(log).event_name.startswith("UpdateFunctionCode")


def test_every_panther_case_has_a_verdict() -> None:
    assert {case for _, case, _ in panther_cases()} == set(OUR_VERDICT)
