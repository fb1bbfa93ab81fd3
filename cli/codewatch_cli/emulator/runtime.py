"""Run the real handlers as Lambda's event-source mappings would, against the emulator.

- The SQS poller takes up to the mapping's batch size, honours partial batch responses (failed
  messages become visible again at once, standing in for the visibility timeout, and moto's redrive
  policy moves them to the DLQ after the receive count), and deletes the rest.
- The stream poller reads each shard in order from TRIM_HORIZON, applies the mapping's filter
  criteria, and on a partial failure retries from the first failed record (bisecting when the mapping
  says so) up to its retry limit, then sends the record's description to the on-failure destination.
- Like Lambda's own pollers, both retry their SQS and stream calls on throttling and 5xx
  (``POLLER_CONFIG``), so a fault injected there (tests/stress) is survived, as in the service.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from datetime import datetime
from types import ModuleType
from typing import Any, TextIO

import boto3
from botocore.config import Config
from moto.events.models import EventPattern

from codewatch_cli.emulator.provision import Deployment, Function

# Lambda's own pollers retry their SQS and stream reads until they succeed; bounded here so a broken emulator
# still ends, and in standard mode so its backoff is the one tests can shorten.
POLLER_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})


class LambdaContext:
    """What the handlers read from Lambda's context object."""

    def __init__(self, function: Function, region: str, account: str) -> None:
        self.function_name = function.logical_id
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function.logical_id}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.logical_id}"
        self.log_stream_name = "emulator"
        self._timeout_ms = function.timeout * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _send_logs_to(module: ModuleType, log: TextIO) -> None:
    """Point the module's Powertools Logger at ``log``: it bound its stream when the module was first imported,
    perhaps outside any redirect (another deployment in the same process, a test)."""
    handler = getattr(getattr(module, "logger", None), "registered_handler", None)
    if handler is not None:
        handler.setStream(log)


def cold_start(module: ModuleType) -> None:
    """Forget the per-container state a handler module caches (clients, settings, allowlist)."""
    for value in vars(module).values():
        clear = getattr(value, "cache_clear", None)
        if callable(clear):
            clear()
    reset = getattr(module, "reset_caches", None)
    if callable(reset):
        reset()


class Invoker:
    """Imports each handler once per deployment and invokes it with its template environment."""

    def __init__(self, deployment: Deployment, log: TextIO, on_invoke: Callable[[str], None] | None = None) -> None:
        self.deployment = deployment
        self.log = log
        self.on_invoke = on_invoke
        self._modules: dict[str, ModuleType] = {}

    def __call__(self, function: Function, event: dict[str, Any]) -> Any:
        module_name, _, attribute = function.handler.rpartition(".")
        # The functions' stdout (structured logs, EMF metrics) is CloudWatch Logs' share: it goes to the log,
        # not into the command's output.
        with (
            _environment({"AWS_LAMBDA_FUNCTION_NAME": function.logical_id, **function.environment}),
            redirect_stdout(self.log),
        ):
            if module_name not in self._modules:
                module = importlib.import_module(module_name)
                cold_start(module)
                _send_logs_to(module, self.log)
                self._modules[module_name] = module
            if self.on_invoke:
                self.on_invoke(function.handler)
            context = LambdaContext(function, self.deployment.region, self.deployment.account)
            return getattr(self._modules[module_name], attribute)(event, context)


def _failed_ids(response: Any) -> set[str]:
    if not isinstance(response, Mapping):
        return set()
    return {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}


class SqsPoller:
    def __init__(self, deployment: Deployment, invoke: Invoker, handler: str) -> None:
        self.mapping = deployment.mapping_for(handler)
        self.invoke = invoke
        self.sqs = boto3.client("sqs", region_name=deployment.region, config=POLLER_CONFIG)
        queue_id = next(key for key, arn in deployment.queue_arns.items() if arn == self.mapping.source_arn)
        self.queue_url = deployment.queue_urls[queue_id]
        self.batch_size = int(self.mapping.properties.get("BatchSize", 10))
        self.invocations = 0

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not received:
                break
            messages.extend(received)
        return messages

    def drain(self, max_batches: int = 10_000) -> None:
        """Invoke until the queue is empty (failed messages come back until their redrive count)."""
        for _ in range(max_batches):
            messages = self._receive_batch()
            if not messages:
                return
            event = {"Records": [self._record(message) for message in messages]}
            self.invocations += 1
            failed = _failed_ids(self.invoke(self.mapping.function, event))
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )
            for message in messages:
                if message["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.source_arn,
            "awsRegion": self.sqs.meta.region_name,
        }


def _lambda_json(value: Any) -> Any:
    """boto3 decodes what Lambda's event leaves as JSON: binary back to base64, times to epoch seconds."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, Mapping):
        return {key: _lambda_json(item) for key, item in value.items()}
    if isinstance(value, list | set | tuple):
        return [_lambda_json(item) for item in value]
    return value


def _moto_placeholder(record: Mapping[str, Any]) -> bool:
    """moto quirk: an UpdateItem that creates an item first streams an INSERT of the bare key, then the real
    image. DynamoDB streams one INSERT of the whole item, so the bare-key record is dropped here."""
    data = record.get("dynamodb", {})
    return record.get("eventName") == "INSERT" and set(data.get("NewImage", {})) == set(data.get("Keys", {}))


class StreamPoller:
    def __init__(self, deployment: Deployment, invoke: Invoker, handler: str) -> None:
        self.deployment = deployment
        self.mapping = deployment.mapping_for(handler)
        self.invoke = invoke
        self.streams = boto3.client("dynamodbstreams", region_name=deployment.region, config=POLLER_CONFIG)
        self.sqs = boto3.client("sqs", region_name=deployment.region, config=POLLER_CONFIG)
        properties = self.mapping.properties
        self.batch_size = int(properties.get("BatchSize", 100))
        self.max_retries = int(properties.get("MaximumRetryAttempts", -1))
        self.bisect = bool(properties.get("BisectBatchOnFunctionError", False))
        self.filters = [
            EventPattern.load(item["Pattern"]) for item in properties.get("FilterCriteria", {}).get("Filters", [])
        ]
        self.failure_arn = properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        self.positions: dict[str, str | None] = {}  # shard -> iterator, kept across drains
        self.invocations = 0

    def _admitted(self, record: dict[str, Any]) -> bool:
        if _moto_placeholder(record):
            return False
        return not self.filters or any(pattern.matches_event(record) for pattern in self.filters)

    def drain(self) -> None:
        shards = self.streams.describe_stream(StreamArn=self.mapping.source_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self.positions:
                self.positions[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.mapping.source_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            while True:
                response = self.streams.get_records(ShardIterator=self.positions[shard_id], Limit=1000)
                records = [_lambda_json(record) for record in response.get("Records", [])]
                if response.get("NextShardIterator"):
                    self.positions[shard_id] = response["NextShardIterator"]
                if not records:
                    break
                for record in records:
                    record["eventSourceARN"] = self.mapping.source_arn
                admitted = [record for record in records if self._admitted(record)]
                for start in range(0, len(admitted), self.batch_size):
                    self._deliver(admitted[start : start + self.batch_size], shard_id)

    def _deliver(self, batch: list[dict[str, Any]], shard_id: str) -> None:
        """Lambda's stream semantics: retry from the first failure, bisect, then give up to the destination."""
        attempts = 0
        pending = batch
        while pending:
            self.invocations += 1
            failed = _failed_ids(self.invoke(self.mapping.function, {"Records": pending}))
            if not failed:
                return
            sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in pending]
            first = min(sequence_numbers.index(number) for number in failed if number in sequence_numbers)
            pending = pending[first:]
            attempts += 1
            if self.max_retries >= 0 and attempts > self.max_retries:
                if self.bisect and len(pending) > 1:
                    middle = len(pending) // 2
                    self._deliver(pending[:middle], shard_id)
                    self._deliver(pending[middle:], shard_id)
                    return
                self._give_up(pending[0], shard_id)
                pending = pending[1:]
                attempts = 0

    def _give_up(self, record: dict[str, Any], shard_id: str) -> None:
        if not self.failure_arn:
            return
        queue_id = next(key for key, arn in self.deployment.queue_arns.items() if arn == self.failure_arn)
        description = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": self.mapping.function.logical_id},
            "DDBStreamBatchInfo": {
                "shardId": shard_id,  # as Lambda writes it: where to read the records back for a redrive
                "streamArn": self.mapping.source_arn,
                "startSequenceNumber": record["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": record["dynamodb"]["SequenceNumber"],
                "batchSize": 1,
            },
        }
        self.sqs.send_message(QueueUrl=self.deployment.queue_urls[queue_id], MessageBody=json.dumps(description))
