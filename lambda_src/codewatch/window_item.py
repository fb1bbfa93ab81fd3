"""The window item in DynamoDB: how the aggregator writes it and how the publisher reads it back.

One item per aggregation key and tumbling window. Each event is one ``UpdateItem``:

* ``seen`` is a binary set with one 12-byte element per event: 4 bytes big-endian of the event's
  offset in seconds from the window start, whose top bit marks an event the allowlist suppressed,
  then the first 8 bytes of SHA-256(eventID).
* ``ConditionExpression: NOT contains(seen, :alerting) AND NOT contains(seen, :suppressed)`` (the
  event's element with the flag clear and set) makes the write idempotent on CloudTrail's ``eventID``:
  a redelivered event changes nothing, even if the allowlist changed in between (one write, no double
  count). Ten thousand events take 120 KB, so an item holds some 33,000 events before DynamoDB's 400 KB
  limit; a single actor key reaching that in one window is far beyond Lambda's control-plane rate, and
  if it ever happens the write fails loudly (``WindowFull`` metric, the message goes to the DLQ)
  instead of miscounting. 64 bits of hash make a false duplicate among 33,000 events a 1-in-10^10 event.
* ``firstTime``/``lastTime`` are not stored: they are the min/max of the alerting offsets in ``seen``,
  so they are exact under any arrival order and any concurrency, with no read-modify-write.
* ``count`` (alerting events) and ``suppressed_count`` are ``ADD 1``; they save readers decoding the set.
* Alerting events add their function name to ``function_updated``, their enrichment (code hashes and
  sources, user-agent and source classes, principal details, risk reasons, allowlist errors) to the
  string set ``facts`` as ``name=value``, and their score to ``risk_scores`` (the finding takes the
  maximum); ``created_at``/``updated_at`` change only with them. A suppressed event adds only
  ``suppressed_by=<entry>`` and ``suppressed_function=<name>`` facts, for audit: it raises nothing.

Values use DynamoDB's low-level attribute-value JSON so this module needs no AWS SDK.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from codewatch.aggregate import KEY_FIELDS, AggregationKey, key_of
from codewatch.enrich import Enrichment
from codewatch.records import CodeUpdate, identity_digest
from codewatch.timeutil import epoch_seconds, format_time, format_time_ms, parse_time, window_bounds

SUPPRESSED_FLAG = 0x8000_0000


def partition_key(key: AggregationKey) -> str:
    digest = hashlib.sha256(json.dumps(list(key), separators=(",", ":")).encode("utf-8", "surrogatepass"))
    return "K#" + digest.hexdigest()[:32]


def sort_key(window_start: datetime) -> str:
    return "W#" + format_time(window_start)


def seen_element(event: CodeUpdate, window_start: datetime, suppressed: bool) -> bytes:
    offset = epoch_seconds(event.event_time) - epoch_seconds(window_start)
    return struct.pack(">I", offset | (SUPPRESSED_FLAG if suppressed else 0)) + identity_digest(event)


def _enrichment_values(event: CodeUpdate, enrichment: Enrichment) -> dict[str, list[str]]:
    principal = event.principal
    values = {
        "function_arns": [event.function_arn],
        "code_sha256": [event.code_sha256],
        "code_sources": [event.code_source.describe()],
        "ua_classes": [enrichment.user_agent_class],
        "source_classes": [enrichment.source_class],
        "risk_reasons": list(enrichment.risk_reasons),
        "published_versions": [event.published_version],
        "key_kinds": [principal.key_kind],
        "session_issuers": [principal.session_issuer_arn],
        "invoked_by": [principal.invoked_by],
        "mfa": [None if principal.mfa_authenticated is None else str(principal.mfa_authenticated).lower()],
        "regions": [event.region],
    }
    # DynamoDB sets may not hold empty strings, and an empty set cannot be written at all.
    return {name: sorted({v for v in items if v}) for name, items in values.items()}


def build_update(
    event: CodeUpdate,
    enrichment: Enrichment,
    *,
    window_seconds: int,
    retention_seconds: int,
    now: datetime,
    suppressed_by: str | None = None,
    allowlist_error: str | None = None,
) -> dict[str, Any]:
    """The ``UpdateItem`` arguments (without ``TableName``) that count ``event`` in its window."""
    window_start, window_end = window_bounds(event.event_time, window_seconds)
    suppressed = suppressed_by is not None
    element = seen_element(event, window_start, suppressed)
    key = key_of(event)
    names: dict[str, str] = {}
    values: dict[str, dict[str, Any]] = {}

    def name(attribute: str) -> str:
        placeholder = f"#a{len(names)}"
        names[placeholder] = attribute
        return placeholder

    def value(attribute_value: dict[str, Any]) -> str:
        placeholder = f":v{len(values)}"
        values[placeholder] = attribute_value
        return placeholder

    actor = {field: {"S": v} for field, v in zip(KEY_FIELDS, key, strict=True) if v is not None}
    sets = [
        f"{name('actor')} = {value({'M': actor})}",
        f"{name('window_start')} = {value({'S': format_time(window_start)})}",
        f"{name('window_end')} = {value({'S': format_time(window_end)})}",
        f"{name('expires_at')} = {value({'N': str(epoch_seconds(window_end) + retention_seconds)})}",
    ]
    seen = name("seen")
    adds = [f"{seen} {value({'BS': [element]})}"]
    if suppressed:
        adds.append(f"{name('suppressed_count')} {value({'N': '1'})}")
        facts = [f"suppressed_by={suppressed_by}"]
        if event.function_name:
            facts.append(f"suppressed_function={event.function_name}")
    else:
        stamp = value({"S": format_time_ms(now)})
        created = name("created_at")
        sets += [f"{name('updated_at')} = {stamp}", f"{created} = if_not_exists({created}, {stamp})"]
        adds.append(f"{name('count')} {value({'N': '1'})}")
        if event.function_name:
            adds.append(f"{name('function_updated')} {value({'SS': [event.function_name]})}")
        adds.append(f"{name('risk_scores')} {value({'NS': [str(enrichment.risk_score)]})}")
        facts = [f"{fact}={item}" for fact, items in _enrichment_values(event, enrichment).items() for item in items]
        if allowlist_error:
            facts.append(f"allowlist_errors={allowlist_error}")
    adds.append(f"{name('facts')} {value({'SS': facts})}")

    # The same event under the other disposition counts as seen too: the allowlist may have changed
    # between two deliveries of it.
    return {
        "Key": {"pk": {"S": partition_key(key)}, "sk": {"S": sort_key(window_start)}},
        "UpdateExpression": "SET " + ", ".join(sets) + " ADD " + ", ".join(adds),
        "ConditionExpression": (
            f"NOT contains({seen}, {value({'B': element})}) AND NOT contains({seen}, {value({'B': _flipped(element)})})"
        ),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _flipped(element: bytes) -> bytes:
    """The element of the same event under the other disposition (alerting <-> suppressed)."""
    (word,) = struct.unpack(">I", element[:4])
    return struct.pack(">I", word ^ SUPPRESSED_FLAG) + element[4:]


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """A window item read back: the hunt row's fields plus the enrichment the finding needs."""

    pk: str
    sk: str
    key: AggregationKey
    window_start: datetime
    window_end: datetime
    count: int  # alerting events
    first_time: datetime | None
    last_time: datetime | None
    function_updated: tuple[str, ...]
    risk_score: int
    suppressed_count: int
    created_at: str | None
    updated_at: str | None
    expires_at: int | None
    sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def values(self, fact: str) -> tuple[str, ...]:
        """The distinct values of one fact (``code_sha256``, ``suppressed_by``, ...), sorted."""
        return self.sets.get(fact, ())

    def hunt_row(self) -> dict[str, Any]:
        row: dict[str, Any] = self.key.as_dict()
        row.update(
            count=self.count,
            firstTime=format_time(self.first_time) if self.first_time else None,
            lastTime=format_time(self.last_time) if self.last_time else None,
            function_updated=list(self.function_updated),
            window_start=format_time(self.window_start),
            window_end=format_time(self.window_end),
        )
        return row


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's size of an item in low-level form: attribute names plus values, binary counted as raw bytes
    (base64 text from a stream record is decoded first), numbers about as written."""

    def size(value: Mapping[str, Any]) -> int:
        ((kind, inner),) = value.items()
        if kind in ("S", "N"):
            return len(str(inner).encode("utf-8", "surrogatepass"))
        if kind == "B":
            return len(_binary(inner))
        if kind in ("SS", "NS"):
            return sum(len(str(v).encode("utf-8", "surrogatepass")) for v in inner)
        if kind == "BS":
            return sum(len(_binary(v)) for v in inner)
        if kind == "M":
            return 3 + sum(len(k.encode()) + size(v) for k, v in inner.items())
        if kind == "L":
            return 3 + sum(size(v) for v in inner)
        return 1  # BOOL, NULL

    return sum(len(name.encode()) + size(value) for name, value in item.items())


def _binary(value: Any) -> bytes:
    """Stream records (Lambda's JSON) carry binary as base64 text; boto3 returns bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if hasattr(value, "value"):  # boto3's Binary wrapper
        return bytes(value.value)
    return base64.b64decode(value)


def _string(item: Mapping[str, Any], attribute: str) -> str | None:
    raw = item.get(attribute)
    return raw.get("S") if isinstance(raw, Mapping) else None


def _string_set(item: Mapping[str, Any], attribute: str) -> tuple[str, ...]:
    raw = item.get(attribute)
    return tuple(sorted(raw.get("SS", ()))) if isinstance(raw, Mapping) else ()


def decode_item(item: Mapping[str, Any]) -> WindowSummary:
    """Read an item in attribute-value form (a stream ``NewImage`` or a low-level ``GetItem``).

    Raises ``ValueError`` (or ``KeyError``) if the item is not a window item.
    """
    window_start = parse_time(_string(item, "window_start"))
    window_end = parse_time(_string(item, "window_end"))
    words = [struct.unpack(">I", _binary(element)[:4])[0] for element in (item.get("seen") or {}).get("BS", ())]
    offsets = [word for word in words if not word & SUPPRESSED_FLAG]
    scores = [int(score) for score in (item.get("risk_scores") or {}).get("NS", ())]
    expires = (item.get("expires_at") or {}).get("N")
    actor = (item.get("actor") or {}).get("M", {})
    key = AggregationKey(*(_string(actor, field_name) for field_name in KEY_FIELDS))
    facts: dict[str, list[str]] = {}
    for fact in (item.get("facts") or {}).get("SS", ()):
        fact_name, _, fact_value = fact.partition("=")
        facts.setdefault(fact_name, []).append(fact_value)
    return WindowSummary(
        pk=_string(item, "pk") or "",
        sk=_string(item, "sk") or "",
        key=key,
        window_start=window_start,
        window_end=window_end,
        count=int((item.get("count") or {}).get("N", 0)),
        first_time=window_start + timedelta(seconds=min(offsets)) if offsets else None,
        last_time=window_start + timedelta(seconds=max(offsets)) if offsets else None,
        function_updated=_string_set(item, "function_updated"),
        risk_score=max(scores) if scores else 0,
        suppressed_count=int((item.get("suppressed_count") or {}).get("N", 0)),
        created_at=_string(item, "created_at"),
        updated_at=_string(item, "updated_at"),
        expires_at=int(expires) if expires is not None else None,
        sets={fact_name: tuple(sorted(values)) for fact_name, values in facts.items()},
    )
