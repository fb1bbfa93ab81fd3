"""The seed's ``stats``: count, first/last time and distinct functions per actor key (and window).

``stats count min(_time) max(_time) values(requestParameters.functionName)
  by src_ip user_arn user_agent user_type eventName aws_account_id``

Unlike Splunk, a missing key field stays ``None`` and the event still counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from codewatch.records import CodeUpdate, identity_digest
from codewatch.timeutil import format_time, window_bounds

KEY_FIELDS = ("src_ip", "user_arn", "user_agent", "user_type", "eventName", "aws_account_id")


class AggregationKey(NamedTuple):
    src_ip: str | None
    user_arn: str | None
    user_agent: str | None
    user_type: str | None
    eventName: str  # the seed's field name, kept for the output contract
    aws_account_id: str | None

    def as_dict(self) -> dict[str, str | None]:
        return dict(zip(KEY_FIELDS, self, strict=True))


def key_of(event: CodeUpdate) -> AggregationKey:
    return AggregationKey(
        event.src_ip, event.user_arn, event.user_agent, event.user_type, event.event_name, event.account_id
    )


@dataclass(slots=True)
class Aggregate:
    """One group's ``stats``. Events are counted once per CloudTrail ``eventID``, as the pipeline counts
    them: CloudTrail delivery is at least once, and overlapping inputs must not inflate the count.
    The 8-byte digests cost memory per matching event (code updates are a sliver of any trail)."""

    first: datetime | None = None
    last: datetime | None = None
    functions: set[str] = field(default_factory=set)
    seen: set[bytes] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.seen)

    def add(self, event: CodeUpdate) -> None:
        digest = identity_digest(event)
        if digest in self.seen:
            return
        self.seen.add(digest)
        if self.first is None or event.event_time < self.first:
            self.first = event.event_time
        if self.last is None or event.event_time > self.last:
            self.last = event.event_time
        if event.function_name is not None:
            self.functions.add(event.function_name)

    def merge(self, other: Aggregate) -> None:
        """Fold in an aggregate of the same group built elsewhere (hunt's worker processes)."""
        self.seen |= other.seen
        if other.first is not None and (self.first is None or other.first < self.first):
            self.first = other.first
        if other.last is not None and (self.last is None or other.last > self.last):
            self.last = other.last
        self.functions |= other.functions


GroupKey = tuple[AggregationKey, datetime | None]


class Aggregator:
    """Groups events by key, and by tumbling window when ``window_seconds`` is set.

    Memory grows with the number of aggregates, never with the number of events.
    """

    def __init__(self, window_seconds: int | None = None) -> None:
        self.window_seconds = window_seconds
        self.groups: dict[GroupKey, Aggregate] = {}

    def add(self, event: CodeUpdate) -> None:
        window_start = window_bounds(event.event_time, self.window_seconds)[0] if self.window_seconds else None
        group = (key_of(event), window_start)
        aggregate = self.groups.get(group)
        if aggregate is None:
            aggregate = self.groups[group] = Aggregate()
        aggregate.add(event)

    def merge(self, other: Aggregator) -> Aggregator:
        """Fold in another aggregator's groups. Merging is commutative and associative, so partial
        aggregates from parallel workers give the same result whatever order they finish in."""
        if other.window_seconds != self.window_seconds:
            raise ValueError("cannot merge aggregators with different windows")
        for group, aggregate in other.groups.items():
            mine = self.groups.get(group)
            if mine is None:
                self.groups[group] = Aggregate(
                    aggregate.first, aggregate.last, set(aggregate.functions), set(aggregate.seen)
                )
            else:
                mine.merge(aggregate)
        return self

    def add_all(self, events: Iterable[CodeUpdate]) -> Aggregator:
        for event in events:
            self.add(event)
        return self

    def rows(self) -> Iterator[dict[str, Any]]:
        """One hunt output row per aggregate, ordered by first time then key for stable output."""

        def order(item: tuple[GroupKey, Aggregate]) -> tuple[str, str, str]:
            (key, window_start), aggregate = item
            return (format_time(aggregate.first) if aggregate.first else "", str(window_start), repr(key))

        for (key, window_start), aggregate in sorted(self.groups.items(), key=order):
            yield row(key, aggregate, window_start, self.window_seconds)


def row(
    key: AggregationKey, aggregate: Aggregate, window_start: datetime | None, window_seconds: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = key.as_dict()
    out["count"] = aggregate.count
    out["firstTime"] = format_time(aggregate.first) if aggregate.first else None
    out["lastTime"] = format_time(aggregate.last) if aggregate.last else None
    out["function_updated"] = sorted(aggregate.functions)
    if window_start is not None and window_seconds:
        start, end = window_bounds(window_start, window_seconds)
        out["window_start"] = format_time(start)
        out["window_end"] = format_time(end)
    return out
