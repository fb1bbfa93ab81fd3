"""A separate aggregator "container" for the concurrency test: a spawned process with its own handler module,
settings, clients and caches, as Lambda runs concurrent invocations. Importable by ``multiprocessing``'s spawn."""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any


def run_aggregator(endpoint: str, environment: dict[str, str], batches: list[list[str]]) -> dict[str, Any]:
    """Invoke the real handler on each batch of message bodies; redeliver failed records (as SQS would) until
    none fail. Returns outcome counts. Runs in a fresh process: nothing is shared with the caller but moto."""
    os.environ.update(environment)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
    )
    sys.stdout = io.StringIO()  # the functions' logs and metrics; not this test's subject
    from aggregator import handler
    from tests.support.cloudtrail import FakeLambdaContext, sqs_event

    redeliveries = 0
    invocations = 0
    for bodies in batches:
        pending = bodies
        for _ in range(10):
            event = sqs_event(pending)
            invocations += 1
            response = handler.lambda_handler(event, FakeLambdaContext())
            failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
            pending = [r["body"] for r in event["Records"] if r["messageId"] in failed]
            if not pending:
                break
            redeliveries += len(pending)
        else:
            raise RuntimeError(f"records still failing after 10 deliveries: {json.dumps(pending)[:500]}")
    return {"invocations": invocations, "redeliveries": redeliveries}
