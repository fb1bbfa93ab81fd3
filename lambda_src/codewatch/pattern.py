"""The EventBridge event pattern: the product's first line of detection, defined once.

The detection stack's rules, the forwarder's rule and the core matcher (``codewatch.match``) all
follow this definition; tests check the matcher against EventBridge's own semantics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EVENT_SOURCE = "lambda.amazonaws.com"
EVENT_NAME_PREFIX = "UpdateFunctionCode"
DETAIL_TYPE = "AWS API Call via CloudTrail"
BUS_SOURCE = "aws.lambda"

#: Every CloudTrail ``userIdentity.type`` we know of. ``AWSService`` is a service acting for itself.
KNOWN_PRINCIPAL_TYPES = (
    "Root",
    "IAMUser",
    "AssumedRole",
    "Role",
    "FederatedUser",
    "AWSAccount",
    "AWSService",
    "IdentityCenterUser",
    "Directory",
    "SAMLUser",
    "WebIdentityUser",
    "Unknown",
)
EXCLUDED_BY_DEFAULT = "AWSService"


@dataclass(frozen=True, slots=True)
class PrincipalSelection:
    """Which ``userIdentity.type`` values the detection covers.

    ``mode`` is ``default`` (every type except AWSService: the seed's IAMUser-only choice misses stolen
    role credentials), ``all`` (no constraint, not even a present type) or ``explicit`` (``types``).
    """

    mode: str = "default"
    types: tuple[str, ...] = ()

    def admits(self, principal_type: str | None) -> bool:
        """The same semantics as the pattern's ``userIdentity.type`` filter in EventBridge."""
        if self.mode == "all":
            return True
        if principal_type is None:
            return False  # EventBridge's anything-but and value lists never match a missing field
        if self.mode == "default":
            return principal_type != EXCLUDED_BY_DEFAULT
        return principal_type in self.types

    def describe(self) -> str:
        return {"default": "default", "all": "all"}.get(self.mode, ",".join(self.types))


DEFAULT_PRINCIPALS = PrincipalSelection()
ALL_PRINCIPALS = PrincipalSelection(mode="all")


def event_pattern(principals: PrincipalSelection = DEFAULT_PRINCIPALS) -> dict[str, Any]:
    """The pattern every codewatch rule carries."""
    detail: dict[str, Any] = {
        "eventSource": [EVENT_SOURCE],
        "eventName": [{"prefix": EVENT_NAME_PREFIX}],
        "errorCode": [{"exists": False}],
    }
    if principals.mode == "default":
        detail["userIdentity"] = {"type": [{"anything-but": [EXCLUDED_BY_DEFAULT]}]}
    elif principals.mode == "explicit":
        detail["userIdentity"] = {"type": sorted(principals.types)}
    return {"source": [BUS_SOURCE], "detail-type": [DETAIL_TYPE], "detail": detail}


def parse_principal_types(value: str | Sequence[str]) -> PrincipalSelection:
    """Parse ``default``, ``all``, ``T1,T2`` or a list of type names.

    Raises ``ValueError`` naming the unknown type and listing the allowed values.
    """
    if isinstance(value, str):
        raw = value.strip()
        if raw in ("", "default"):
            return DEFAULT_PRINCIPALS
        if raw == "all":
            return ALL_PRINCIPALS
        names = [part.strip() for part in raw.split(",") if part.strip()]
    else:
        names = list(value)
    unknown = [repr(name) for name in names if name not in KNOWN_PRINCIPAL_TYPES]
    if unknown or not names:
        raise ValueError(
            f"unknown principal type(s) {', '.join(unknown) or repr(value)}; use 'all', 'default' "
            f"or a list of: {', '.join(KNOWN_PRINCIPAL_TYPES)}"
        )
    return PrincipalSelection(mode="explicit", types=tuple(sorted(set(names))))
