"""The detection rule on plain data: the same decision the EventBridge pattern makes.

``rule`` answers "does this record describe a successful Lambda code change by a covered principal?",
as Panther's ``rule()`` does. It works on raw records so hunt can skip everything else cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codewatch.pattern import DEFAULT_PRINCIPALS, EVENT_NAME_PREFIX, EVENT_SOURCE, PrincipalSelection


def is_code_update_call(record: Mapping[str, Any]) -> bool:
    """Lambda's ``UpdateFunctionCode`` in any version (``UpdateFunctionCode20150331v2`` and the bare name)."""
    name = record.get("eventName")
    return record.get("eventSource") == EVENT_SOURCE and isinstance(name, str) and name.startswith(EVENT_NAME_PREFIX)


def succeeded(record: Mapping[str, Any]) -> bool:
    """CloudTrail omits ``errorCode`` on success (the pattern's ``exists: false``)."""
    return record.get("errorCode") is None


def principal_type(record: Mapping[str, Any]) -> str | None:
    identity = record.get("userIdentity")
    value = identity.get("type") if isinstance(identity, Mapping) else None
    return value if isinstance(value, str) else None


def rule(record: Any, principals: PrincipalSelection = DEFAULT_PRINCIPALS) -> bool:
    if not isinstance(record, Mapping):
        return False
    return is_code_update_call(record) and succeeded(record) and principals.admits(principal_type(record))
