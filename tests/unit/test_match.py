"""The rule on raw records: the same decision as the EventBridge pattern."""

from __future__ import annotations

import pytest

from codewatch.match import rule
from codewatch.pattern import ALL_PRINCIPALS, DEFAULT_PRINCIPALS, PrincipalSelection, parse_principal_types
from tests.support.cloudtrail import code_update


@pytest.mark.parametrize("name", ["UpdateFunctionCode20150331v2", "UpdateFunctionCode20150331", "UpdateFunctionCode"])
def test_every_version_of_the_name_matches(name: str) -> None:
    assert rule(code_update(event_name=name))


@pytest.mark.parametrize(
    "name",
    ["UpdateFunctionConfiguration20150331v2", "CreateFunction20150331", "updatefunctioncode", "XUpdateFunctionCode"],
)
def test_other_names_do_not_match(name: str) -> None:
    assert not rule(code_update(event_name=name))


def test_other_event_source_does_not_match() -> None:
    record = code_update()
    record["eventSource"] = "lambda.example.com"
    assert not rule(record)


def test_failed_call_does_not_match() -> None:
    assert not rule(code_update(error_code="AccessDeniedException"))


def test_null_error_code_counts_as_success() -> None:
    record = code_update()
    record["errorCode"] = None
    assert rule(record)


@pytest.mark.parametrize("user_type", ["IAMUser", "AssumedRole", "FederatedUser", "Root", "IdentityCenterUser"])
def test_default_covers_every_type_but_aws_service(user_type: str) -> None:
    assert rule(code_update(user_type=user_type))


def test_default_excludes_aws_service_and_a_missing_type() -> None:
    assert not rule(code_update(user_type="AWSService"))
    record = code_update()
    del record["userIdentity"]["type"]
    assert not rule(record)


def test_all_admits_aws_service_and_a_missing_type() -> None:
    assert rule(code_update(user_type="AWSService"), ALL_PRINCIPALS)
    record = code_update()
    del record["userIdentity"]
    assert rule(record, ALL_PRINCIPALS)


def test_explicit_list_reproduces_the_seed() -> None:
    seed = parse_principal_types("IAMUser")
    assert rule(code_update(user_type="IAMUser"), seed)
    assert not rule(code_update(user_type="AssumedRole"), seed)


def test_non_object_record_never_matches() -> None:
    assert not rule(["UpdateFunctionCode"])


@pytest.mark.parametrize(
    ("text", "selection"),
    [
        ("default", DEFAULT_PRINCIPALS),
        ("", DEFAULT_PRINCIPALS),
        ("all", ALL_PRINCIPALS),
        ("IAMUser, AssumedRole", PrincipalSelection("explicit", ("AssumedRole", "IAMUser"))),
        (["Root"], PrincipalSelection("explicit", ("Root",))),
    ],
)
def test_parse_principal_types(text: str | list[str], selection: PrincipalSelection) -> None:
    assert parse_principal_types(text) == selection


@pytest.mark.parametrize("text", ["IAMuser", "IAMUser,Bogus", ","])
def test_parse_principal_types_rejects_unknown_names(text: str) -> None:
    with pytest.raises(ValueError, match="unknown principal type"):
        parse_principal_types(text)
