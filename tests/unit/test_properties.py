"""Properties over generated input: the parser's only failure is MalformedRecord; aggregation is exact."""

from __future__ import annotations

import contextlib
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codewatch.aggregate import Aggregator
from codewatch.match import rule
from codewatch.records import MalformedRecord, iter_records, normalise
from tests.support.cloudtrail import code_update

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Values that reach deep into normalise: right keys, arbitrary (often wrong) types.
RECORD_KEYS = (
    "eventName",
    "eventSource",
    "eventTime",
    "eventID",
    "errorCode",
    "userIdentity",
    "requestParameters",
    "responseElements",
    "sourceIPAddress",
    "userAgent",
    "recipientAccountId",
    "awsRegion",
)
NESTED_KEYS = (
    "type",
    "arn",
    "accessKeyId",
    "sessionContext",
    "attributes",
    "sessionIssuer",
    "mfaAuthenticated",
    "invokedBy",
    "functionName",
    "fullyQualifiedArn",
    "arnPrefix",
    "relativeId",
    "region",
    "account",
    "partition",
    "publish",
    "dryRun",
    "s3Bucket",
    "s3Key",
    "imageUri",
    "functionArn",
    "codeSha256",
    "version",
    "packageType",
)
times = st.sampled_from(
    ["2026-11-30T10:15:00Z", "2026-11-30T10:15:00+14:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "x"]
)
nested = st.recursive(
    json_scalars | times,
    lambda inner: st.dictionaries(st.sampled_from(NESTED_KEYS), inner, max_size=5),
    max_leaves=15,
)
record_like = st.fixed_dictionaries(
    {
        "eventName": st.sampled_from(["UpdateFunctionCode20150331v2", "GetFunction"]) | json_scalars,
        "eventSource": st.just("lambda.amazonaws.com") | json_scalars,
        "eventTime": times | json_scalars,
    },
    optional={key: nested for key in RECORD_KEYS[3:]},
)
documents = (
    json_values
    | record_like
    | st.builds(lambda records: {"Records": records}, st.lists(record_like | json_values, max_size=3))
    | st.builds(
        lambda detail, kind: {"detail-type": kind, "detail": detail},
        record_like | json_values,
        st.sampled_from(["AWS API Call via CloudTrail", "Other"]) | json_scalars,
    )
)


@SETTINGS
@given(documents)
def test_parsing_raises_nothing_but_malformed_record(document: Any) -> None:
    with contextlib.suppress(MalformedRecord):
        for _, record in iter_records(document):
            with contextlib.suppress(MalformedRecord):
                normalise(record)


actors = st.fixed_dictionaries(
    {
        "src_ip": st.sampled_from(["198.51.100.7", "203.0.113.9", None]),
        "user_agent": st.sampled_from(["aws-cli/2", "Boto3/1", None]),
        "user_type": st.sampled_from(["IAMUser", "AssumedRole", "AWSService"]),
        "event_name": st.sampled_from(["UpdateFunctionCode20150331v2", "UpdateFunctionCode", "GetFunction20150331v2"]),
        "error_code": st.sampled_from([None, None, "AccessDenied"]),
        "function": st.sampled_from(["a", "b", "arn:aws:lambda:us-east-1:123456789012:function:c"]),
        "event_time": st.builds(
            lambda d, h, m: f"2026-11-{d:02d}T{h:02d}:{m:02d}:00Z",
            st.integers(1, 3),
            st.integers(0, 23),
            st.integers(0, 59),
        ),
    }
)


@SETTINGS
@given(st.lists(actors, max_size=40), st.randoms(use_true_random=False), st.sampled_from([None, 60, 3600]))
def test_aggregation_is_order_independent_and_counts_every_match(
    specs: list[dict[str, Any]], shuffler: random.Random, window: int | None
) -> None:
    records = [code_update(**spec) for spec in specs]
    matching = [normalise(record) for record in records if rule(record)]
    rows = list(Aggregator(window).add_all(matching).rows())
    assert sum(row["count"] for row in rows) == len(matching)

    shuffled = matching[:]
    shuffler.shuffle(shuffled)
    assert list(Aggregator(window).add_all(shuffled).rows()) == rows
    cut = shuffler.randrange(len(shuffled) + 1)
    merged = Aggregator(window).add_all(shuffled[cut:]).merge(Aggregator(window).add_all(shuffled[:cut]))
    assert list(merged.rows()) == rows
