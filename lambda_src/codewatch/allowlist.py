"""The allowlist: the seed's empty ``aws_lambda_updatefunctioncode_filter`` macro, made explicit and safe.

Document (kept in an SSM parameter, or a file for ``hunt``)::

    {"version": 1,
     "entries": [{"id": "ci-deploys", "reason": "release pipeline", "expires": "2027-01-31T00:00:00Z",
                  "match": {"principal_arn": ["arn:aws:sts::*:assumed-role/Deploy*/*"],
                            "src_ip": ["203.0.113.0/24"], "user_agent": ["*Terraform*"],
                            "function": ["payments-*"], "account": ["111122223333"]}}]}

Every field under ``match`` must hold (AND); within a field any value is enough (OR). Strings are
case-sensitive globs; ``src_ip`` takes CIDRs or exact values (an address, or a service name as CloudTrail
logs it, such as ``cloudformation.amazonaws.com``). Unknown keys are errors, never ignored:
an ignored misspelt field would silently widen what an entry suppresses.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from codewatch.records import CodeUpdate, parse_function_arn
from codewatch.timeutil import parse_time

SCHEMA_VERSION = 1
MATCH_FIELDS = ("principal_arn", "src_ip", "user_agent", "function", "account")
ENTRY_FIELDS = ("id", "reason", "expires", "match")
EMPTY_DOCUMENT = {"version": SCHEMA_VERSION, "entries": []}
_ADDRESS_SHAPED = re.compile(r"[0-9A-Fa-f.:/%]+")


class AllowlistError(ValueError):
    """The document is invalid; the message lists every problem found."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    reason: str
    expires: datetime | None
    match: Mapping[str, tuple[str, ...]]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def matches(self, event: CodeUpdate) -> bool:
        for field_name, patterns in self.match.items():
            if field_name == "src_ip":
                if not self._ip_matches(event.src_ip, patterns):
                    return False
            elif not any(fnmatchcase(value, pattern) for value in _values(field_name, event) for pattern in patterns):
                return False
        return True

    def _ip_matches(self, source: str | None, patterns: tuple[str, ...]) -> bool:
        if source is None:
            return False
        if source in patterns:
            return True
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def _values(field_name: str, event: CodeUpdate) -> tuple[str, ...]:
    """The event's values for a match field. ``function`` matches the name as logged, the short name and the ARN."""
    if field_name == "principal_arn":
        return (event.user_arn,) if event.user_arn else ()
    if field_name == "user_agent":
        return (event.user_agent,) if event.user_agent else ()
    if field_name == "account":
        return (event.account_id,) if event.account_id else ()
    names: list[str] = []
    for candidate in (event.function_name, event.function_arn):
        if candidate:
            names.append(candidate)
            parts = parse_function_arn(candidate)
            if parts and parts["name"]:
                names.append(parts["name"])
    return tuple(names)


@dataclass(frozen=True, slots=True)
class Allowlist:
    entries: tuple[Entry, ...] = ()

    def decide(self, event: CodeUpdate, now: datetime) -> str | None:
        """The id of the first live entry that matches the event; expired entries never match."""
        for entry in self.entries:
            if not entry.expired(now) and entry.matches(event):
                return entry.id
        return None

    def expired_ids(self, now: datetime) -> tuple[str, ...]:
        return tuple(entry.id for entry in self.entries if entry.expired(now))


def parse_allowlist(source: str | bytes | Mapping[str, Any]) -> Allowlist:
    """Validate and compile a document (JSON text or parsed). Raises ``AllowlistError`` listing the problems."""
    if isinstance(source, str | bytes):
        try:
            document = json.loads(source)
        except (ValueError, RecursionError) as error:
            raise AllowlistError(f"not valid JSON: {error}") from None
    else:
        document = source
    problems: list[str] = []
    if not isinstance(document, Mapping):
        raise AllowlistError("the document must be a JSON object with 'version' and 'entries'")
    unknown = sorted(set(document) - {"version", "entries"})
    if unknown:
        problems.append(f"unknown top-level key(s): {', '.join(map(repr, unknown))}")
    # ``type(...) is int``: JSON ``true`` and ``1.0`` compare equal to 1 in Python but are not version 1.
    if type(document.get("version")) is not int or document.get("version") != SCHEMA_VERSION:
        problems.append(f"'version' must be {SCHEMA_VERSION}")
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list):
        problems.append("'entries' must be a list")
        raw_entries = []
    entries: list[Entry] = []
    seen_ids: set[str] = set()
    for position, raw in enumerate(raw_entries):
        entry = _parse_entry(raw, position, problems)
        if entry is None:
            continue
        if entry.id in seen_ids:
            problems.append(f"entries[{position}]: duplicate id {entry.id!r}")
        seen_ids.add(entry.id)
        entries.append(entry)
    if problems:
        raise AllowlistError("; ".join(problems))
    return Allowlist(tuple(entries))


def _parse_entry(raw: Any, position: int, problems: list[str]) -> Entry | None:
    where = f"entries[{position}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be an object")
        return None
    before = len(problems)
    unknown = sorted(set(raw) - set(ENTRY_FIELDS))
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    entry_id, reason = raw.get("id"), raw.get("reason")
    if not isinstance(entry_id, str) or not entry_id.strip():
        problems.append(f"{where}: 'id' must be a non-empty string")
    else:
        where = f"entry {entry_id!r}"
    if not isinstance(reason, str) or not reason.strip():
        problems.append(f"{where}: 'reason' is required (why is this activity expected?)")
    expires = None
    if raw.get("expires") is not None:
        try:
            expires = parse_time(raw["expires"])
        except (ValueError, OverflowError):  # OverflowError: an offset pushing year 1 or 9999 out of range
            problems.append(f"{where}: 'expires' must be an ISO-8601 UTC time such as 2027-01-31T00:00:00Z")
    match = raw.get("match")
    compiled: dict[str, tuple[str, ...]] = {}
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    if not isinstance(match, Mapping) or not match:
        problems.append(f"{where}: 'match' must be a non-empty object (an empty match would suppress everything)")
    else:
        for field_name, values in match.items():
            if field_name not in MATCH_FIELDS:
                problems.append(f"{where}: unknown match field {field_name!r}; allowed: {', '.join(MATCH_FIELDS)}")
                continue
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(value, str) and value for value in values)
            ):
                problems.append(f"{where}: match.{field_name} must be a non-empty list of non-empty strings")
                continue
            if field_name == "src_ip":
                for value in values:
                    try:
                        networks.append(ipaddress.ip_network(value, strict=False))
                    except ValueError:
                        # CloudTrail also logs service names ("cloudformation.amazonaws.com", "AWS Internal")
                        # as the source: those are exact values. Something shaped like an address that
                        # does not parse (10.0.0.0/33) is a mistake, refused rather than never matching.
                        if _ADDRESS_SHAPED.fullmatch(value):
                            problems.append(f"{where}: match.src_ip value {value!r} is not an IP address or CIDR")
            compiled[field_name] = tuple(values)
    if len(problems) > before:
        return None
    return Entry(id=entry_id, reason=reason, expires=expires, match=compiled, networks=tuple(networks))
