"""The app's configuration: read from ``cdk.json`` context and validated in this one place.

Every key has a default, so an empty context synthesizes the embedded default deployment. A bad value
raises :class:`ConfigError` naming the key and what is allowed, which stops the synth before any
construct is built.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from codewatch.pattern import KNOWN_PRINCIPAL_TYPES, PrincipalSelection, parse_principal_types

#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180),
    *(365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653),
)

_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
_OU_OR_ROOT = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
# SSM parameter names: a leading slash, then letters, digits and . - _ / (no "aws"/"ssm" prefix).
_SSM_NAME = re.compile(r"^/(?!aws|ssm)[A-Za-z0-9_.\-/]{1,1010}$", re.IGNORECASE)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_BUS_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,256}$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_\-]{1,64}$")


class ConfigError(ValueError):
    """A context value is missing its contract; the message names the key and the allowed values."""


@dataclass(frozen=True, slots=True)
class CodewatchConfig:
    """Validated deployment settings. Field names are the ``cdk.json`` context keys."""

    # Detection
    principal_types: str = "default"
    window_minutes: int = 60
    retention_days: int = 30
    allowlist_parameter_name: str = "/codewatch/allowlist"
    allowlist_cache_seconds: int = 300
    # Aggregator (SQS → Lambda)
    aggregator_batch_size: int = 100
    aggregator_batching_window_seconds: int = 5
    aggregator_max_concurrency: int = 5
    aggregator_memory_mb: int = 512
    aggregator_timeout_seconds: int = 60
    # Publisher (DynamoDB stream → Lambda)
    publisher_batch_size: int = 100
    publisher_batching_window_seconds: int = 5
    publisher_max_retries: int = 5
    publisher_max_record_age_seconds: int = 86400
    publisher_memory_mb: int = 256
    publisher_timeout_seconds: int = 120
    # Runtime
    powertools_version: str = "3.37.0"
    log_retention_days: int = 365
    # Monitoring
    alarm_email: str | None = None
    # Organization (issue #7)
    organization_id: str | None = None
    central_bus_name: str = "codewatch-central"
    security_account_id: str | None = None
    home_region: str | None = None
    forwarder_regions: tuple[str, ...] = ()
    stackset_target_ous: tuple[str, ...] = ()
    stackset_regions: tuple[str, ...] = ()
    stackset_call_as: str = "DELEGATED_ADMIN"
    member_findings: bool = False
    member_findings_role_name: str = "codewatch-member-findings"

    @property
    def principals(self) -> PrincipalSelection:
        return parse_principal_types(self.principal_types)

    @property
    def organization_mode(self) -> bool:
        return self.organization_id is not None

    @property
    def publisher_role_name(self) -> str:
        """Fixed only in member-findings mode, where member accounts' trust policies name it."""
        return f"codewatch-publisher-{self.home_region}"

    def central_bus_arn(self, partition: str) -> str:
        """The security account's central bus; forwarders in other accounts and regions target it.

        ``partition`` is the stack's (a token at synth), so the same template serves aws, aws-cn and GovCloud.
        """
        return f"arn:{partition}:events:{self.home_region}:{self.security_account_id}:event-bus/{self.central_bus_name}"

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> CodewatchConfig:
        """Build from a mapping of context values; unknown ``codewatch``-owned keys are ignored."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name in context and context[field.name] is not None:
                check = _CHECKS[field.name]
                values[field.name] = check(field.name, context[field.name])
        config = cls(**values)
        config._check_combinations()
        return config

    def _check_combinations(self) -> None:
        if self.aggregator_batch_size > 10 and self.aggregator_batching_window_seconds < 1:
            raise ConfigError(
                "aggregator_batching_window_seconds: SQS needs a batching window of at least 1 second when "
                f"aggregator_batch_size is above 10 (got {self.aggregator_batch_size})"
            )
        org_keys = {
            "security_account_id": self.security_account_id,
            "home_region": self.home_region,
        }
        if self.organization_mode:
            for key, value in org_keys.items():
                if value is None:
                    raise ConfigError(f"{key}: required when organization_id is set")
        needs_org = {
            "forwarder_regions": bool(self.forwarder_regions),
            "stackset_target_ous": bool(self.stackset_target_ous),
            "member_findings": self.member_findings,
        }
        for key, used in needs_org.items():
            if used and not self.organization_mode:
                raise ConfigError(f"{key}: needs organization_id (an AWS Organization ID such as o-a1b2c3d4e5)")
        if self.member_findings and not self.stackset_target_ous:
            raise ConfigError(
                "member_findings: the member accounts' role is deployed by the StackSet; set stackset_target_ous"
            )
        if self.stackset_target_ous and not self.stackset_regions:
            raise ConfigError("stackset_regions: at least one region is required when stackset_target_ous is set")
        if self.home_region and self.home_region in self.forwarder_regions:
            raise ConfigError(
                f"forwarder_regions: must not include home_region {self.home_region!r} "
                "(the detection stack itself covers it)"
            )


# --- per-key checks: each returns the normalised value or raises ConfigError naming the key ---


def _int(low: int, high: int) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{key}: expected an integer from {low} to {high}, got {value!r}")
        return value

    return check


def _one_of_ints(allowed: Sequence[int]) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or value not in allowed:
            raise ConfigError(f"{key}: expected one of {', '.join(map(str, allowed))}, got {value!r}")
        return int(value)

    return check


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _matching(pattern: re.Pattern[str], allowed: str) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise ConfigError(f"{key}: expected {allowed}, got {value!r}")
        return value

    return check


def _list_of(pattern: re.Pattern[str], allowed: str) -> Callable[[str, Any], tuple[str, ...]]:
    def check(key: str, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) and pattern.match(i) for i in items):
            raise ConfigError(f"{key}: expected a list of {allowed}, got {value!r}")
        if len(set(items)) != len(items):
            raise ConfigError(f"{key}: duplicate entries in {value!r}")
        return tuple(items)

    return check


def _principal_types(key: str, value: Any) -> str:
    if not isinstance(value, str | list | tuple):
        raise ConfigError(f"{key}: expected 'default', 'all' or a list of {', '.join(KNOWN_PRINCIPAL_TYPES)}")
    try:
        selection = parse_principal_types(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return selection.describe()


def _call_as(key: str, value: Any) -> str:
    if value not in ("SELF", "DELEGATED_ADMIN"):
        raise ConfigError(f"{key}: expected 'SELF' (management account) or 'DELEGATED_ADMIN', got {value!r}")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "principal_types": _principal_types,
    "window_minutes": _int(1, 1440),
    "retention_days": _int(1, 3650),
    "allowlist_parameter_name": _matching(_SSM_NAME, "an SSM parameter name such as /codewatch/allowlist"),
    "allowlist_cache_seconds": _int(1, 3600),
    "aggregator_batch_size": _int(1, 10000),
    "aggregator_batching_window_seconds": _int(0, 300),
    "aggregator_max_concurrency": _int(2, 1000),
    "aggregator_memory_mb": _int(128, 10240),
    "aggregator_timeout_seconds": _int(3, 900),
    "publisher_batch_size": _int(1, 10000),
    "publisher_batching_window_seconds": _int(0, 300),
    "publisher_max_retries": _int(0, 10000),
    "publisher_max_record_age_seconds": _int(60, 604800),
    "publisher_memory_mb": _int(128, 10240),
    "publisher_timeout_seconds": _int(3, 900),
    "powertools_version": _matching(_SEMVER, "a Powertools for AWS Lambda (Python) release such as 3.37.0"),
    "log_retention_days": _one_of_ints(LOG_RETENTION_DAYS),
    "alarm_email": _matching(_EMAIL, "an e-mail address"),
    "organization_id": _matching(_ORG_ID, "an AWS Organization ID such as o-a1b2c3d4e5"),
    "central_bus_name": _matching(_BUS_NAME, "an event bus name (letters, digits, . _ -)"),
    "security_account_id": _matching(_ACCOUNT_ID, "a 12-digit AWS account ID"),
    "home_region": _matching(_REGION, "an AWS region name such as eu-west-1"),
    "forwarder_regions": _list_of(_REGION, "AWS region names"),
    "stackset_target_ous": _list_of(_OU_OR_ROOT, "organizational unit IDs (ou-…) or a root ID (r-…)"),
    "stackset_regions": _list_of(_REGION, "AWS region names"),
    "stackset_call_as": _call_as,
    "member_findings": _bool,
    "member_findings_role_name": _matching(_ROLE_NAME, "an IAM role name"),
}

#: The context keys this app reads (documented in the README, "Configuration").
CONTEXT_KEYS = tuple(_CHECKS)


def config_from_node(node: Any) -> CodewatchConfig:
    """Read every known key from a construct node's context (``cdk.json`` or ``-c key=value``).

    Values given on the command line arrive as strings; numbers and booleans are decoded here so
    ``-c window_minutes=30`` works like the JSON value would.
    """
    _reject_unknown_keys(node)
    context: dict[str, Any] = {}
    for key in CONTEXT_KEYS:
        value = node.try_get_context(key)
        if isinstance(value, str) and key not in _STRING_KEYS:
            value = _decode_cli_string(value)
        context[key] = value
    return CodewatchConfig.from_context(context)


_STRING_KEYS = {
    "principal_types",
    "allowlist_parameter_name",
    "alarm_email",
    "organization_id",
    "central_bus_name",
    "security_account_id",
    "home_region",
    "stackset_call_as",
    "member_findings_role_name",
    "forwarder_regions",
    "stackset_target_ous",
    "stackset_regions",
}


#: Plain (snake_case) context keys that are not ours but legitimately present.
_FOREIGN_KEYS = {"account", "region"}
_OWN_STYLE = re.compile(r"^[a-z][a-z0-9_]*$")


def _reject_unknown_keys(node: Any) -> None:
    """A mistyped key (``windows_minutes``) would silently fall back to the default; refuse it.

    CDK's own keys (``@aws-cdk/...``, ``aws:cdk:...``, ``cdk-...``) have other shapes and pass.
    """
    get_all = getattr(node, "get_all_context", None)
    if get_all is None:
        return
    for key in get_all():
        if _OWN_STYLE.match(key) and key not in _CHECKS and key not in _FOREIGN_KEYS:
            close = difflib.get_close_matches(key, CONTEXT_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(CONTEXT_KEYS)}"
            raise ConfigError(f"{key}: unknown context key{hint}")


def _decode_cli_string(value: str) -> Any:
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(value)
    except ValueError:
        return value
