"""The allowlist document: every validation rule, and the matching semantics in DESIGN.md."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from codewatch.allowlist import AllowlistError, parse_allowlist
from codewatch.records import CodeUpdate, normalise
from tests.support.cloudtrail import code_update

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DEPLOY_ARN = "arn:aws:sts::123456789012:assumed-role/DeployRole/gha-1"


def document(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "entries": list(entries)}


def entry(match: dict[str, list[str]], **extra: Any) -> dict[str, Any]:
    return {"id": extra.pop("id", "e1"), "reason": "expected", "match": match, **extra}


def event(**overrides: Any) -> CodeUpdate:
    defaults: dict[str, Any] = {"user_type": "AssumedRole", "user_arn": DEPLOY_ARN, "src_ip": "203.0.113.10"}
    return normalise(code_update(**{**defaults, **overrides}))


def decide(match: dict[str, list[str]], the_event: CodeUpdate) -> str | None:
    return parse_allowlist(document(entry(match))).decide(the_event, NOW)


def test_the_design_example_parses_from_json_text() -> None:
    text = json.dumps(
        document(
            {
                "id": "ci-deploys",
                "reason": "release pipeline",
                "expires": "2027-01-31T00:00:00Z",
                "match": {
                    "principal_arn": ["arn:aws:sts::*:assumed-role/Deploy*/*"],
                    "src_ip": ["203.0.113.0/24"],
                    "user_agent": ["*Terraform*"],
                    "function": ["payments-*"],
                    "account": ["123456789012"],
                },
            }
        )
    )
    allowlist = parse_allowlist(text)
    assert [e.id for e in allowlist.entries] == ["ci-deploys"]
    terraform = event(user_agent="APN/1.0 HashiCorp/1.0 Terraform/1.9.3", function="payments-api")
    assert allowlist.decide(terraform, NOW) == "ci-deploys"


# ---------------------------------------------------------------------------------------------- matching


def test_every_field_must_hold() -> None:
    match = {"principal_arn": ["arn:aws:sts::*:assumed-role/Deploy*/*"], "src_ip": ["203.0.113.0/24"]}
    assert decide(match, event()) == "e1"
    assert decide(match, event(src_ip="198.51.100.1")) is None
    assert decide(match, event(user_arn="arn:aws:iam::123456789012:user/mallory")) is None


def test_any_value_within_a_field_is_enough() -> None:
    match = {"account": ["111122223333", "123456789012"]}
    assert decide(match, event()) == "e1"
    assert decide({"account": ["111122223333"]}, event()) is None


def test_globs_are_case_sensitive() -> None:
    assert decide({"principal_arn": ["*assumed-role/Deploy*"]}, event()) == "e1"
    assert decide({"principal_arn": ["*assumed-role/deploy*"]}, event()) is None


@pytest.mark.parametrize(
    ("pattern", "source", "matches"),
    [
        ("203.0.113.0/24", "203.0.113.200", True),
        ("203.0.113.0/24", "203.0.114.1", False),
        ("203.0.113.10", "203.0.113.10", True),
        ("203.0.113.10", "203.0.113.11", False),
        ("2001:db8::/32", "2001:db8:1::5", True),
        ("203.0.113.0/24", "cloudformation.amazonaws.com", False),
        ("cloudformation.amazonaws.com", "cloudformation.amazonaws.com", True),
        ("AWS Internal", "AWS Internal", True),
        ("AWS Internal", "203.0.113.10", False),
    ],
)
def test_src_ip_takes_cidrs_or_exact_values(pattern: str, source: str, matches: bool) -> None:
    assert (decide({"src_ip": [pattern]}, event(src_ip=source)) == "e1") is matches


def test_missing_field_on_the_event_never_matches() -> None:
    assert decide({"src_ip": ["0.0.0.0/0"]}, event(src_ip=None)) is None
    assert decide({"user_agent": ["*"]}, event(user_agent=None)) is None


def test_function_matches_logged_name_short_name_and_arn() -> None:
    arn_logged = event(function="arn:aws:lambda:us-east-1:123456789012:function:payments-api")
    assert decide({"function": ["payments-*"]}, arn_logged) == "e1"
    assert decide({"function": ["arn:aws:lambda:*:function:payments-api"]}, event(function="payments-api")) == "e1"
    assert decide({"function": ["billing-*"]}, arn_logged) is None


def test_first_live_matching_entry_wins() -> None:
    allowlist = parse_allowlist(
        document(entry({"account": ["123456789012"]}, id="a"), entry({"account": ["123456789012"]}, id="b"))
    )
    assert allowlist.decide(event(), NOW) == "a"


def test_expired_entries_are_ignored_and_reported() -> None:
    allowlist = parse_allowlist(
        document(
            entry({"account": ["123456789012"]}, id="old", expires="2026-01-01T00:00:00Z"),
            entry({"account": ["999999999999"]}, id="live", expires="2027-01-01T00:00:00Z"),
        )
    )
    assert allowlist.decide(event(), NOW) is None
    assert allowlist.expired_ids(NOW) == ("old",)
    assert allowlist.expired_ids(datetime(2025, 1, 1, tzinfo=UTC)) == ()


def test_an_entry_expires_at_its_instant() -> None:
    allowlist = parse_allowlist(document(entry({"account": ["123456789012"]}, expires="2026-12-01T00:00:00Z")))
    assert allowlist.decide(event(), NOW) is None
    assert allowlist.expired_ids(NOW) == ("e1",)


# ---------------------------------------------------------------------------------------------- validation


VALID = entry({"account": ["123456789012"]})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["entries"][0].update(match={}), "'match' must be a non-empty object"),
        (lambda d: d["entries"][0].pop("match"), "'match' must be a non-empty object"),
        (lambda d: d["entries"][0].pop("reason"), "'reason' is required"),
        (lambda d: d["entries"][0].update(reason="  "), "'reason' is required"),
        (lambda d: d["entries"][0].update(id=""), "'id' must be a non-empty string"),
        (lambda d: d["entries"][0].update(note="x"), "unknown key(s) 'note'"),
        (lambda d: d["entries"][0]["match"].update(principal=["*"]), "unknown match field 'principal'"),
        (lambda d: d["entries"][0]["match"].update(account="123456789012"), "must be a non-empty list"),
        (lambda d: d["entries"][0]["match"].update(account=[]), "must be a non-empty list"),
        (lambda d: d["entries"][0]["match"].update(account=[""]), "must be a non-empty list"),
        (lambda d: d["entries"][0]["match"].update(src_ip=["10.0.0.0/33"]), "not an IP address or CIDR"),
        (lambda d: d["entries"][0]["match"].update(src_ip=["10.0.0.300"]), "not an IP address or CIDR"),
        (lambda d: d["entries"][0].update(expires="next week"), "'expires' must be an ISO-8601"),
        (lambda d: d["entries"][0].update(expires="0001-01-01T00:00:00+01:00"), "'expires' must be an ISO-8601"),
        (lambda d: d["entries"].append(copy.deepcopy(d["entries"][0])), "duplicate id 'e1'"),
        (lambda d: d["entries"].append("x"), "must be an object"),
        (lambda d: d.update(version=2), "'version' must be 1"),
        (lambda d: d.update(version=True), "'version' must be 1"),
        (lambda d: d.pop("version"), "'version' must be 1"),
        (lambda d: d.update(entries={}), "'entries' must be a list"),
        (lambda d: d.update(comment="x"), "unknown top-level key(s): 'comment'"),
    ],
)
def test_invalid_documents_are_refused_with_the_reason(change: Any, problem: str) -> None:
    doc = document(copy.deepcopy(VALID))
    change(doc)
    with pytest.raises(AllowlistError) as raised:
        parse_allowlist(doc)
    assert problem in str(raised.value)


def test_every_problem_is_listed() -> None:
    doc = {"version": 2, "entries": [{"id": "a", "match": {}}]}
    with pytest.raises(AllowlistError) as raised:
        parse_allowlist(doc)
    message = str(raised.value)
    assert "'version' must be 1" in message
    assert "'reason' is required" in message
    assert "'match' must be a non-empty object" in message


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '"x"'])
def test_non_documents_are_refused(text: str) -> None:
    with pytest.raises(AllowlistError):
        parse_allowlist(text)


def test_deeply_nested_text_is_refused_not_crashed() -> None:
    with pytest.raises(AllowlistError):
        parse_allowlist("[" * 100_000)


def test_empty_entries_is_valid() -> None:
    assert parse_allowlist(document()).entries == ()
