"""At-least-once delivery, any order, any concurrency: the counts are exact.

- Duplicates and order: each event delivered one to three times, shuffled, across many batches.
- Concurrency: four aggregator processes (each its own module state and boto3 clients, as four Lambda
  containers) write the same keys at once, every event delivered to one or more of them.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from codewatch.aggregate import Aggregator
from codewatch.records import normalise
from codewatch.window_item import decode_item
from codewatch_cli.demo import Pipeline
from tests.e2e.test_pipeline import finding_rows, hunt
from tests.stress.harness import burst, feed
from tests.stress.instrument import Instrument
from tests.stress.workers import run_aggregator
from tests.support.cloudtrail import code_update, envelope


def table_rows(pipeline: Pipeline) -> list[dict[str, Any]]:
    import boto3

    items = []
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=pipeline.deployment.table_name):
        items.extend(page["Items"])
    return sorted((decode_item(item).hunt_row() for item in items), key=json.dumps)


def hunt_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(Aggregator(3600).add_all(normalise(r) for r in records).rows(), key=json.dumps)


def test_every_event_one_to_three_times_shuffled_counts_once(
    stress_pipeline: Pipeline, instrument: Instrument, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = burst(300, seed=13, hours=3)
    rng = random.Random(21)
    deliveries = [record for record in records for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    assert len(deliveries) > 1.8 * len(records)
    # Fifty events a put: the queue is drained between puts, so redeliveries fall in different batches.
    feed(stress_pipeline, deliveries, chunk=50)
    assert stress_pipeline.window_counts() == (len(records), 0)
    assert table_rows(stress_pipeline) == hunt_rows(records)
    assert finding_rows(stress_pipeline.findings()) == hunt(records, tmp_path, capsys)
    assert instrument.updated_at_problems() == []
    assert stress_pipeline.aggregator.invocations >= len(deliveries) // 50


@pytest.fixture
def atomic_moto_update_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serialise moto's UpdateItem, as DynamoDB serialises writes to one item.

    moto server handles requests on threads, and its UpdateItem is a read-modify-write of a Python object
    with no lock: two concurrent writes to one item can lose one of them (seen in this test: 149 of 150),
    which DynamoDB never does. The server runs in this process, so its backend can be locked here; the
    handlers under test are untouched (they run in their own processes).
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    original = DynamoDBBackend.update_item

    def update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", update_item)


@pytest.mark.usefixtures("atomic_moto_update_item")
def test_four_concurrent_aggregators_on_the_same_keys(
    stress_pipeline: Pipeline,
    stress_endpoint: str,
    instrument: Instrument,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Two keys, one window: every write of the four workers lands on one of two items.
    actors = [
        {"user_arn": "arn:aws:iam::123456789012:user/alice", "src_ip": "198.51.100.7"},
        {"user_arn": "arn:aws:iam::123456789012:user/mallory", "src_ip": "203.0.113.66"},
    ]
    rng = random.Random(4)
    records = [
        code_update(
            event_id=f"conc-{n:04d}",
            event_time=f"2026-11-30T10:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
            function=rng.choice(["payments-api", "orders", "auth-edge", "reports"]),
            **actors[n % 2],
        )
        for n in range(300)
    ]
    bodies = [json.dumps(envelope(record)) for record in records]
    # Each event goes to one to three of the four workers; each worker's share is shuffled and batched.
    shares: list[list[str]] = [[] for _ in range(4)]
    for body in bodies:
        for worker in rng.sample(range(4), rng.randint(1, 3)):
            shares[worker].append(body)
    for share in shares:
        rng.shuffle(share)
    batches = [[share[i : i + 25] for i in range(0, len(share), 25)] for share in shares]
    environment = stress_pipeline.aggregator.mapping.function.environment

    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcomes = list(pool.map(run_aggregator, [stress_endpoint] * 4, [environment] * 4, batches))

    assert sum(o["invocations"] for o in outcomes) >= sum(len(b) for b in batches)
    rows = table_rows(stress_pipeline)
    assert rows == hunt_rows(records)  # counts, firstTime/lastTime and function sets, per key
    assert [row["count"] for row in rows] == [150, 150]
    stress_pipeline.publisher.drain()
    assert finding_rows(stress_pipeline.findings()) == hunt(records, tmp_path, capsys)
    assert instrument.updated_at_problems() == []
