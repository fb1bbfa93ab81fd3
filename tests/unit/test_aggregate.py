"""The seed's stats: count, first/last time, distinct functions per key (and window), and merging."""

from __future__ import annotations

from typing import Any

import pytest

from codewatch.aggregate import KEY_FIELDS, Aggregator
from codewatch.records import CodeUpdate, normalise
from tests.support.cloudtrail import code_update


def ev(**overrides: Any) -> CodeUpdate:
    return normalise(code_update(**overrides))


def test_one_row_per_key_with_count_times_and_sorted_functions() -> None:
    rows = list(
        Aggregator()
        .add_all(
            [
                ev(event_time="2026-11-30T10:40:00Z", function="b"),
                ev(event_time="2026-11-30T10:05:00Z", function="a"),
                ev(event_time="2026-11-30T10:20:00Z", function="b"),
            ]
        )
        .rows()
    )
    assert len(rows) == 1
    row = rows[0]
    assert list(row)[: len(KEY_FIELDS)] == list(KEY_FIELDS)
    assert (row["count"], row["firstTime"], row["lastTime"]) == (3, "2026-11-30T10:05:00Z", "2026-11-30T10:40:00Z")
    assert row["function_updated"] == ["a", "b"]
    assert "window_start" not in row


@pytest.mark.parametrize(
    "field",
    [{"src_ip": "192.0.2.1"}, {"user_agent": "other"}, {"user_type": "AssumedRole"}, {"account": "210987654321"}],
)
def test_each_key_field_separates_groups(field: dict[str, str]) -> None:
    rows = list(Aggregator().add_all([ev(), ev(**field)]).rows())
    assert [row["count"] for row in rows] == [1, 1]


def test_missing_key_fields_stay_null_and_still_count() -> None:
    rows = list(Aggregator().add_all([ev(src_ip=None, user_agent=None), ev(src_ip=None, user_agent=None)]).rows())
    assert (rows[0]["src_ip"], rows[0]["user_agent"], rows[0]["count"]) == (None, None, 2)


def test_windows_split_groups_and_carry_their_bounds() -> None:
    events = [ev(event_time="2026-11-30T10:59:59Z"), ev(event_time="2026-11-30T11:00:00Z")]
    rows = list(Aggregator(window_seconds=3600).add_all(events).rows())
    assert [(r["window_start"], r["window_end"], r["count"]) for r in rows] == [
        ("2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z", 1),
        ("2026-11-30T11:00:00Z", "2026-11-30T12:00:00Z", 1),
    ]


def test_merge_equals_adding_everything_to_one() -> None:
    events = [
        ev(event_time=f"2026-11-30T1{hour}:0{minute}:00Z", function=f"f{minute}")
        for hour in range(3)
        for minute in range(3)
    ]
    whole = list(Aggregator(3600).add_all(events).rows())
    left, right = Aggregator(3600).add_all(events[::2]), Aggregator(3600).add_all(events[1::2])
    assert list(left.merge(right).rows()) == whole
    assert list(Aggregator(3600).merge(Aggregator(3600).add_all(events)).rows()) == whole


def test_merge_does_not_share_state_with_its_source() -> None:
    source = Aggregator().add_all([ev(function="a")])
    target = Aggregator().merge(source)
    target.add(ev(function="b"))
    assert next(source.rows())["function_updated"] == ["a"]


def test_merge_refuses_different_windows() -> None:
    with pytest.raises(ValueError, match="different windows"):
        Aggregator(60).merge(Aggregator(3600))


def test_an_event_delivered_twice_counts_once_as_in_the_pipeline() -> None:
    first = ev(event_id="dup-1", event_time="2026-11-30T10:00:00Z")
    again = ev(event_id="dup-1", event_time="2026-11-30T10:00:00Z")
    other = ev(event_id="dup-2", event_time="2026-11-30T10:05:00Z")
    aggregator = Aggregator().add_all([first, again, other, again])
    [row] = aggregator.rows()
    assert row["count"] == 2
    split_a, split_b = Aggregator().add_all([first, other]), Aggregator().add_all([again])
    assert [r["count"] for r in split_a.merge(split_b).rows()] == [2]


def test_records_without_event_id_are_identified_by_their_content() -> None:
    record = code_update()
    del record["eventID"]
    same, changed = dict(record), {**record, "sourceIPAddress": record["sourceIPAddress"]}
    changed["requestID"] = "another-request"
    rows = list(Aggregator().add_all(normalise(r) for r in (record, same, changed)).rows())
    assert [row["count"] for row in rows] == [2]
