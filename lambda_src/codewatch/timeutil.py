"""Time parsing and formatting in the one format every contract uses: ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value: object) -> datetime:
    """Parse a CloudTrail ``eventTime`` (ISO-8601, ``Z`` or offset) into an aware UTC datetime.

    Raises ``ValueError`` for anything else, including naive times we cannot place.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("eventTime is not a string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("eventTime has no time zone")
    return parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_time_ms(moment: datetime) -> str:
    """Millisecond precision, for ASFF ``CreatedAt``/``UpdatedAt`` which must strictly increase."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_seconds(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds())


def from_epoch_seconds(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def window_bounds(moment: datetime, window_seconds: int) -> tuple[datetime, datetime]:
    """The tumbling window ``[start, end)`` holding ``moment``; windows are aligned to the Unix epoch."""
    seconds = epoch_seconds(moment)
    start = seconds - seconds % window_seconds
    return from_epoch_seconds(start), from_epoch_seconds(start + window_seconds)


def parse_duration(text: str) -> int:
    """``90s``, ``60m``, ``24h``, ``7d`` or bare minutes, to seconds. Raises ``ValueError`` naming the input."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in units else "m"
    number = raw[:-1] if raw[-1:] in units else raw
    if not number.isdigit() or int(number) <= 0:
        raise ValueError(f"invalid duration {text!r}: use a positive number with s, m, h or d (e.g. 60m)")
    return int(number) * units[unit]
