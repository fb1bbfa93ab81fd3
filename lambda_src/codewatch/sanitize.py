"""Make attacker-controlled strings (user agents, names, ARNs) safe for findings and logs.

A safe string has no control characters: each one is written as the visible escape ``\\uXXXX``, so a
user agent cannot forge log lines or hide text in a console. Long strings are cut with a marker that
says how much was removed, so a responder knows the value is not whole.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
TRUNCATION_MARKER = "…[truncated {removed} chars]"


def escape_controls(value: str) -> str:
    """Replace control, bidi-override and lone-surrogate characters with ``\\uXXXX``."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def truncate(value: str, limit: int) -> str:
    """Cut ``value`` to at most ``limit`` characters, ending with a marker when anything was removed."""
    if len(value) <= limit:
        return value
    # The marker's own length depends on the number it carries; two passes settle it.
    keep = limit
    for _ in range(2):
        marker = TRUNCATION_MARKER.format(removed=len(value) - keep)
        keep = max(limit - len(marker), 0)
    return value[:keep] + TRUNCATION_MARKER.format(removed=len(value) - keep)[: limit - keep]


def safe_text(value: object, limit: int) -> str:
    """Escape, then truncate: the result is printable and fits ``limit``."""
    text = value if isinstance(value, str) else str(value)
    return truncate(escape_controls(text), limit)
