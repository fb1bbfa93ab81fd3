"""Configuration: every context key, valid and invalid; a bad value names its key."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import CONTEXT_KEYS, CodewatchConfig, ConfigError

ORG = {"organization_id": "o-a1b2c3d4e5", "security_account_id": "111122223333", "home_region": "eu-west-1"}

VALID: list[tuple[str, Any, Any]] = [
    ("principal_types", "default", "default"),
    ("principal_types", "all", "all"),
    ("principal_types", "IAMUser", "IAMUser"),
    ("principal_types", ["Root", "IAMUser", "AssumedRole"], "AssumedRole,IAMUser,Root"),
    ("principal_types", "FederatedUser, IAMUser", "FederatedUser,IAMUser"),
    ("window_minutes", 15, 15),
    ("retention_days", 90, 90),
    ("allowlist_parameter_name", "/security/codewatch-allowlist", "/security/codewatch-allowlist"),
    ("allowlist_cache_seconds", 1, 1),
    ("aggregator_batch_size", 10, 10),
    ("aggregator_batching_window_seconds", 0, 0),
    ("aggregator_max_concurrency", 2, 2),
    ("aggregator_memory_mb", 1024, 1024),
    ("aggregator_timeout_seconds", 30, 30),
    ("publisher_batch_size", 1000, 1000),
    ("publisher_batching_window_seconds", 10, 10),
    ("publisher_max_retries", 0, 0),
    ("publisher_max_record_age_seconds", 3600, 3600),
    ("publisher_memory_mb", 512, 512),
    ("publisher_timeout_seconds", 300, 300),
    ("powertools_version", "3.36.0", "3.36.0"),
    ("log_retention_days", 731, 731),
    ("alarm_email", "secops@example.com", "secops@example.com"),
    ("organization_id", "o-a1b2c3d4e5", "o-a1b2c3d4e5"),
    ("central_bus_name", "security-central", "security-central"),
    ("security_account_id", "111122223333", "111122223333"),
    ("home_region", "eu-west-1", "eu-west-1"),
    ("forwarder_regions", ["us-east-1", "eu-central-1"], ("us-east-1", "eu-central-1")),
    ("stackset_target_ous", ["ou-ab12-cd34ef56", "r-ab12"], ("ou-ab12-cd34ef56", "r-ab12")),
    ("stackset_regions", "eu-west-1,us-east-1", ("eu-west-1", "us-east-1")),
    ("stackset_call_as", "SELF", "SELF"),
    ("member_findings", True, True),
    ("member_findings_role_name", "cw-findings", "cw-findings"),
]

INVALID: list[tuple[str, Any]] = [
    ("principal_types", "Admin"),
    ("principal_types", 3),
    ("window_minutes", 0),
    ("window_minutes", "60"),
    ("window_minutes", True),
    ("retention_days", 5000),
    ("allowlist_parameter_name", "codewatch/allowlist"),
    ("allowlist_parameter_name", "/aws/reserved"),
    ("allowlist_cache_seconds", 0),
    ("aggregator_batch_size", 10001),
    ("aggregator_batching_window_seconds", 301),
    ("aggregator_max_concurrency", 1),
    ("aggregator_memory_mb", 64),
    ("aggregator_timeout_seconds", 901),
    ("publisher_batch_size", 0),
    ("publisher_batching_window_seconds", -5),
    ("publisher_max_retries", 10001),
    ("publisher_max_record_age_seconds", 30),
    ("publisher_memory_mb", 20000),
    ("publisher_timeout_seconds", 1),
    ("powertools_version", "latest"),
    ("log_retention_days", 10),
    ("alarm_email", "not-an-address"),
    ("organization_id", "123456"),
    ("central_bus_name", "bad name!"),
    ("security_account_id", "12345"),
    ("home_region", "Europe"),
    ("forwarder_regions", ["us-east-1", "mars-1"]),
    ("forwarder_regions", ["us-east-1", "us-east-1"]),
    ("stackset_target_ous", ["ou-bad"]),
    ("stackset_regions", [42]),
    ("stackset_call_as", "ADMIN"),
    ("member_findings", "yes"),
    ("member_findings_role_name", "bad/role"),
]


def test_every_key_has_valid_and_invalid_cases() -> None:
    assert {key for key, _, _ in VALID} == set(CONTEXT_KEYS)
    assert {key for key, _ in INVALID} == set(CONTEXT_KEYS)


def test_defaults() -> None:
    config = CodewatchConfig.from_context({})
    assert config.principals.mode == "default"
    assert (config.window_minutes, config.retention_days, config.allowlist_parameter_name) == (
        60,
        30,
        "/codewatch/allowlist",
    )
    assert config.organization_id is None
    assert config.alarm_email is None
    assert config.member_findings is False


@pytest.mark.parametrize(("key", "value", "expected"), VALID)
def test_valid_value(key: str, value: Any, expected: Any) -> None:
    context = {**ORG, key: value}
    if key in ("stackset_target_ous", "member_findings"):
        context.setdefault("stackset_target_ous", ["ou-ab12-cd34ef56"])
        context["stackset_regions"] = ["eu-west-1"]
    if key == "aggregator_batching_window_seconds":
        context["aggregator_batch_size"] = 10  # SQS allows no window only for batches up to 10
    assert getattr(CodewatchConfig.from_context(context), key) == expected


@pytest.mark.parametrize(("key", "value"), INVALID)
def test_invalid_value_names_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        CodewatchConfig.from_context({**ORG, key: value})


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"aggregator_batch_size": 100, "aggregator_batching_window_seconds": 0}, "aggregator_batching_window_seconds"),
        ({"organization_id": "o-a1b2c3d4e5"}, "security_account_id"),
        ({"organization_id": "o-a1b2c3d4e5", "security_account_id": "111122223333"}, "home_region"),
        ({"member_findings": True}, "member_findings"),
        ({"forwarder_regions": ["us-east-1"]}, "forwarder_regions"),
        ({**ORG, "stackset_target_ous": ["ou-ab12-cd34ef56"]}, "stackset_regions"),
        ({**ORG, "forwarder_regions": ["eu-west-1"]}, "forwarder_regions"),
        ({**ORG, "member_findings": True}, "member_findings"),
    ],
)
def test_inconsistent_combinations_name_the_key(context: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        CodewatchConfig.from_context(context)


def test_cli_strings_are_decoded() -> None:
    from stacks.config import config_from_node

    class Node:
        def try_get_context(self, key: str) -> Any:
            return {"window_minutes": "30", "member_findings": "false", "principal_types": "IAMUser"}.get(key)

    config = config_from_node(Node())
    assert config.window_minutes == 30
    assert config.member_findings is False
    assert config.principal_types == "IAMUser"


def test_a_mistyped_key_is_refused_with_a_suggestion() -> None:
    from stacks.application import build_app

    with pytest.raises(ConfigError, match=r"^windows_minutes: unknown context key; did you mean 'window_minutes'\?"):
        build_app(context={"windows_minutes": 30})


def test_bad_context_stops_the_synth_with_the_key() -> None:
    from stacks.application import build_app

    with pytest.raises(ConfigError, match=r"^window_minutes: "):
        build_app(context={"window_minutes": -1})
