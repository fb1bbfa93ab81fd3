"""What the stress tests share: realistic bursts, redrives, and reading the functions' logs and metrics."""

from __future__ import annotations

import io
import json
import random
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from codewatch_cli.demo import Pipeline, put_events
from codewatch_cli.emulator.runtime import _lambda_json
from tests.support.cloudtrail import ACTORS, code_update

FUNCTIONS = ("payments-api", "orders", "auth-edge", "customer-export", "reports")
BURST_START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def burst(count: int, seed: int, hours: int = 6, prefix: str = "evt") -> list[dict[str, Any]]:
    """``count`` matching events from a few actors over ``hours`` hourly windows, times scattered.

    Spread over keys and windows as a real burst is: one actor deploying thousands of times in one hour is
    not realistic, and moto's UpdateItem slows as one item's ``seen`` set grows (it re-sizes the whole item).
    Event IDs are fixed by the seed, so every run (and every fault pattern) is the same.
    """
    rng = random.Random(seed)
    records = []
    for n in range(count):
        moment = BURST_START + timedelta(seconds=rng.randrange(hours * 3600))
        records.append(
            code_update(
                event_id=f"{prefix}-{seed}-{n:06d}",
                event_time=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                function=rng.choice(FUNCTIONS),
                **rng.choice(ACTORS),
            )
        )
    return records


def feed(pipeline: Pipeline, records: list[dict[str, Any]], chunk: int = 100) -> int:
    """Put the events on the bus ``chunk`` at a time, settling after each. Returns events accepted.

    Events arrive over time and the aggregator keeps up, so the queue never holds the whole burst; that
    matters here because moto's ReceiveMessage costs O(queue depth) per message returned (it recomputes every
    queue attribute for each one), which makes a 5,000-message backlog quadratic.
    """
    accepted = 0
    for start in range(0, len(records), chunk):
        accepted += put_events(records[start : start + chunk], pipeline.region)
        pipeline.settle()
    return accepted


def _sqs() -> Any:
    return boto3.client("sqs")


def _receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)


def ingest_dlq_url(pipeline: Pipeline) -> str:
    """The dead-letter queue of the aggregator's source queue, from the queue's redrive policy."""
    attributes = _sqs().get_queue_attributes(QueueUrl=pipeline.aggregator.queue_url, AttributeNames=["RedrivePolicy"])
    target = json.loads(attributes["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
    [queue_id] = [key for key, arn in pipeline.deployment.queue_arns.items() if arn == target]
    return pipeline.deployment.queue_urls[queue_id]


def redrive_ingest_dlq(pipeline: Pipeline) -> int:
    """Move every message of the ingest DLQ back to the source queue (as SQS's DLQ redrive does). Returns how many."""
    sqs = _sqs()
    dlq = ingest_dlq_url(pipeline)
    messages = _receive_all(sqs, dlq)
    for message in messages:
        sqs.send_message(QueueUrl=pipeline.aggregator.queue_url, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def redrive_stream_failures(pipeline: Pipeline) -> int:
    """Replay the stream records named by the publisher's on-failure destination. Returns how many records.

    Lambda's failure record for a stream names the shard and sequence range, not the data: the records are
    read back from the stream (24 h retention) and handed to the publisher again, in stream order, so the
    last image of each window is the last one imported (a replay out of order could import a stale count).
    """
    sqs = _sqs()
    streams = boto3.client("dynamodbstreams")
    failure_arn = pipeline.publisher.failure_arn
    [queue_id] = [key for key, arn in pipeline.deployment.queue_arns.items() if arn == failure_arn]
    url = pipeline.deployment.queue_urls[queue_id]
    messages = _receive_all(sqs, url)
    infos = sorted(
        (json.loads(message["Body"])["DDBStreamBatchInfo"] for message in messages),
        key=lambda info: int(info["startSequenceNumber"]),
    )
    records: list[dict[str, Any]] = []
    for info in infos:
        iterator = streams.get_shard_iterator(
            StreamArn=info["streamArn"],
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
        found = streams.get_records(ShardIterator=iterator, Limit=info["batchSize"])["Records"]
        records += [dict(_lambda_json(record), eventSourceARN=info["streamArn"]) for record in found]
    for start in range(0, len(records), 100):
        response = pipeline.invoker(pipeline.publisher.mapping.function, {"Records": records[start : start + 100]})
        assert not response["batchItemFailures"], f"the redrive failed again: {response}"
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(records)


# --- the functions' output: Powertools JSON log lines and EMF metric lines ---------------------------


def output_lines(log: io.StringIO) -> list[dict[str, Any]]:
    """Every line the functions wrote, parsed; a line that is not one JSON object fails the test."""
    lines = []
    for number, line in enumerate(log.getvalue().splitlines()):
        parsed = json.loads(line)
        assert isinstance(parsed, dict), f"log line {number} is not a JSON object: {line[:200]!r}"
        lines.append(parsed)
    return lines


def unescaped_controls(log: io.StringIO) -> list[str]:
    """Log lines holding a raw control character (Unicode category Cc, or a line/paragraph separator).

    JSON escapes C0 controls itself, but Powertools writes with ``ensure_ascii=False``, so DEL, C1 controls
    (e.g. U+009B, a terminal's CSI) and U+2028/U+2029 would pass through raw unless the code escaped them first.
    """
    bad = []
    for line in log.getvalue().splitlines():
        if any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in line):
            bad.append(line[:300])
    return bad


def metrics_emitted(lines: list[dict[str, Any]]) -> Counter[str]:
    """Sum of each metric over every EMF line."""
    totals: Counter[str] = Counter()
    for line in lines:
        directives = line.get("_aws", {}).get("CloudWatchMetrics", [])
        for directive in directives:
            for metric in directive.get("Metrics", []):
                value = line.get(metric["Name"])
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] += sum(v for v in values if isinstance(v, int | float))
    return totals


def log_messages(lines: list[dict[str, Any]], level: str | None = None) -> list[dict[str, Any]]:
    return [line for line in lines if "message" in line and (level is None or line.get("level") == level)]
