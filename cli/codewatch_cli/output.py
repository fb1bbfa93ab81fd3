"""Render hunt rows: JSON lines for machines, an aligned table for people.

Every string in a row can be attacker-controlled (user agent, ARNs, function names). JSON output keeps
the logged values exactly; ``ensure_ascii`` writes every control, bidi and non-ASCII character as a
``\\uXXXX`` escape, so no value can move the cursor or forge a line on a terminal. The table escapes
control characters (``codewatch.sanitize``) and truncates long cells with a visible ellipsis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from codewatch.sanitize import escape_controls

# (column title, row key, widest cell). The actor's identity gets the room; times are fixed width.
TABLE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("COUNT", "count", 8),
    ("FIRST", "firstTime", 20),
    ("LAST", "lastTime", 20),
    ("USER_TYPE", "user_type", 16),
    ("USER_ARN", "user_arn", 64),
    ("SRC_IP", "src_ip", 39),
    ("USER_AGENT", "user_agent", 60),
    ("ACCOUNT", "aws_account_id", 12),
    ("EVENT", "eventName", 30),
    ("FUNCTIONS", "function_updated", 90),
)
WINDOW_COLUMNS: tuple[tuple[str, str, int], ...] = (("WINDOW_START", "window_start", 20),)
MISSING = "-"
ELLIPSIS = "…"


def write_json(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=True, separators=(",", ":")) + "\n")


def cell(value: Any, limit: int) -> str:
    """One table cell: escaped, and cut to ``limit`` with a one-character ellipsis (``--format json`` has
    the whole value; findings use ``sanitize.truncate``'s longer marker, too wide for a column)."""
    if value is None:
        return MISSING
    if isinstance(value, list):
        value = ",".join(value) if value else MISSING
    text = escape_controls(str(value))
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def write_table(rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    windowed = any("window_start" in row for row in rows)
    columns = (WINDOW_COLUMNS + TABLE_COLUMNS) if windowed else TABLE_COLUMNS
    cells = [[cell(row.get(key), limit) for _, key, limit in columns] for row in rows]
    widths = [max([len(title)] + [len(line[i]) for line in cells]) for i, (title, _, _) in enumerate(columns)]
    out.write(_line([title for title, _, _ in columns], widths))
    for line in cells:
        out.write(_line(line, widths))


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    # The last column is not padded: no trailing blanks.
    padded = [value.ljust(width) for value, width in zip(values[:-1], widths[:-1], strict=True)]
    return "  ".join([*padded, values[-1]]) + "\n"
