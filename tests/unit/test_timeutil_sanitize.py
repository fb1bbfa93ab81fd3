"""Time parsing, window bounds and durations; escaping and truncating attacker-controlled text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from codewatch.sanitize import TRUNCATION_MARKER, escape_controls, safe_text, truncate
from codewatch.timeutil import (
    epoch_seconds,
    format_time,
    format_time_ms,
    from_epoch_seconds,
    parse_duration,
    parse_time,
    window_bounds,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T10:15:00Z", datetime(2026, 11, 30, 10, 15, tzinfo=UTC)),
        ("2026-11-30T10:15:00z", datetime(2026, 11, 30, 10, 15, tzinfo=UTC)),
        ("2026-11-30T12:15:00+02:00", datetime(2026, 11, 30, 10, 15, tzinfo=UTC)),
        ("2026-11-30T10:15:00.250Z", datetime(2026, 11, 30, 10, 15, 0, 250000, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected
    assert parse_time(text).tzinfo == UTC


@pytest.mark.parametrize("value", ["2026-11-30T10:15:00", "", "soon", None, 1764497700])
def test_parse_time_refuses_what_it_cannot_place(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the input on purpose
        parse_time(value)


def test_format_time_is_seconds_utc() -> None:
    moment = parse_time("2026-11-30T12:15:07.999+02:00")
    assert format_time(moment) == "2026-11-30T10:15:07Z"
    assert format_time_ms(moment) == "2026-11-30T10:15:07.999Z"


def test_epoch_round_trip() -> None:
    moment = datetime(2026, 11, 30, 10, 15, tzinfo=UTC)
    assert from_epoch_seconds(epoch_seconds(moment)) == moment


@pytest.mark.parametrize(
    ("moment", "seconds", "start", "end"),
    [
        ("2026-11-30T10:15:00Z", 3600, "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z"),
        ("2026-11-30T10:59:59Z", 3600, "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z"),
        ("2026-11-30T11:00:00Z", 3600, "2026-11-30T11:00:00Z", "2026-11-30T12:00:00Z"),
        ("2026-11-30T10:15:00Z", 900, "2026-11-30T10:15:00Z", "2026-11-30T10:30:00Z"),
        ("2026-11-30T23:30:00Z", 86400, "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"),
    ],
)
def test_window_bounds_are_half_open_and_epoch_aligned(moment: str, seconds: int, start: str, end: str) -> None:
    low, high = window_bounds(parse_time(moment), seconds)
    assert (format_time(low), format_time(high)) == (start, end)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("60m", 3600), ("24h", 86400), ("7d", 604800), ("15", 900), (" 2H ", 7200)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0m", "-5m", "m", "", "1.5h", "60x", "1w"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


# ---------------------------------------------------------------------------------------------- sanitize


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("line\nforged", "line\\u000aforged"),
        ("\x1b[31mred", "\\u001b[31mred"),
        ("nul\x00", "nul\\u0000"),
        ("\x7f\x85", "\\u007f\\u0085"),
        ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("lone\ud800", "lone\\ud800"),
        ("café ☕ 日本", "café ☕ 日本"),
    ],
)
def test_escape_controls(raw: str, safe: str) -> None:
    assert escape_controls(raw) == safe


def test_truncate_leaves_short_text_alone() -> None:
    assert truncate("abc", 3) == "abc"


@pytest.mark.parametrize("limit", [40, 64, 256, 1024])
def test_truncate_fits_the_limit_and_says_how_much_was_cut(limit: int) -> None:
    value = "x" * 5000
    cut = truncate(value, limit)
    assert len(cut) == limit
    kept = len(cut) - len(TRUNCATION_MARKER.format(removed=5000 - cut.index("…")))
    assert cut.endswith(TRUNCATION_MARKER.format(removed=5000 - kept))


@pytest.mark.parametrize("limit", [0, 1, 5, 10])
def test_truncate_never_exceeds_a_tiny_limit(limit: int) -> None:
    assert len(truncate("y" * 100, limit)) <= limit


def test_safe_text_escapes_before_truncating() -> None:
    assert safe_text("a\nb", 100) == "a\\u000ab"
    assert len(safe_text("\n" * 100, 50)) == 50
    assert safe_text(12345, 10) == "12345"
