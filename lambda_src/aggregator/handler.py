"""Aggregator Lambda: count each matching CloudTrail event exactly once in its actor's window.

SQS delivers EventBridge envelopes in batches. Each record is processed on its own (Powertools batch
processing with partial batch responses), so one bad or throttled record never fails or replays the
others:

1. parse the envelope and run the shared detection rule (``codewatch.match``);
2. apply the allowlist (SSM, cached; fail open);
3. enrich (``codewatch.enrich``);
4. write the window: one conditional ``UpdateItem`` (``codewatch.window_item``), idempotent on eventID.

Errors: throttling and 5xx are retried by botocore (standard mode: exponential backoff with jitter,
bounded attempts); when those are spent the record is reported failed and SQS redelivers it. A record
that can never succeed (not JSON, not an envelope, malformed CloudTrail) is logged with its message ID
and reason and reported failed, so after the queue's redrive count it rests in the DLQ.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parameters import SSMProvider
from botocore.config import Config
from botocore.exceptions import ClientError

from aggregator.allowlist_source import AllowlistSource, AllowlistState, AllowlistUnavailable
from aggregator.settings import Settings
from codewatch.enrich import enrich
from codewatch.match import rule
from codewatch.records import MalformedRecord, is_envelope, normalise, unwrap_envelope
from codewatch.sanitize import safe_text
from codewatch.window_item import build_update

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
# With our logger, Powertools logs each failed record's exception (at the level it chooses) instead of
# dropping it into the default logger: an unexpected error is visible, not just a redelivery.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logger)

# Standard mode retries throttling and 5xx with exponential backoff and jitter; the bound keeps a
# record's worst case well inside the function timeout, after which SQS redelivery takes over.
AWS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=3, read_timeout=5)
ITEM_TOO_LARGE = "Item size"


class WindowFull(RuntimeError):
    """The window item reached DynamoDB's 400 KB limit (about 33,000 events); see codewatch.window_item."""


@cache
def settings() -> Settings:
    return Settings.from_environ()


@cache
def dynamodb() -> Any:
    return boto3.client("dynamodb", config=AWS_CONFIG)


@cache
def allowlist_source() -> AllowlistSource:
    config = settings()
    provider = SSMProvider(boto3_client=boto3.client("ssm", config=AWS_CONFIG))
    return AllowlistSource(provider, config.allowlist_parameter, config.allowlist_cache_seconds)


def _count_retries(metadata: dict[str, Any]) -> None:
    retries = metadata.get("RetryAttempts", 0)
    if retries:
        metrics.add_metric(name="Retries", unit=MetricUnit.Count, value=retries)


def parse_body(body: str | None) -> Any:
    """The CloudTrail record inside an SQS message body holding an EventBridge envelope."""
    try:
        envelope = json.loads(body or "")
    except (ValueError, RecursionError):
        raise MalformedRecord("message body is not JSON") from None
    if not isinstance(envelope, dict) or not is_envelope(envelope):
        raise MalformedRecord("message body is not an EventBridge envelope")
    detail = unwrap_envelope(envelope)
    if not isinstance(detail, dict):
        raise MalformedRecord("the envelope's detail is not an object")
    return detail


def record_handler(record: SQSRecord) -> str:
    """Process one SQS record; raising marks it failed for redelivery. Returns the outcome, for tests."""
    metrics.add_metric(name="EventsReceived", unit=MetricUnit.Count, value=1)
    config = settings()
    try:
        cloudtrail = parse_body(record.body)
        if not rule(cloudtrail, config.principals):
            # The rule's pattern should make this impossible; count it so drift between the two shows.
            metrics.add_metric(name="EventsNotMatched", unit=MetricUnit.Count, value=1)
            return "not-matched"
        event = normalise(cloudtrail)
    except MalformedRecord as error:
        metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
        logger.error("malformed record", extra={"message_id": record.message_id, "reason": safe_text(error, 300)})
        raise
    metrics.add_metric(name="EventsMatched", unit=MetricUnit.Count, value=1)

    now = datetime.now(UTC)
    source = allowlist_source()
    try:
        state = source.current()
    except AllowlistUnavailable as error:
        if int(record.attributes.approximate_receive_count) < config.max_receive_count:
            logger.warning("allowlist temporarily unreadable; record left for redelivery", extra={"reason": str(error)})
            raise
        # The last delivery before the DLQ: alert without the allowlist rather than not at all.
        state = AllowlistState(allowlist=None, error=f"{error} on the last delivery")
    if source.report_due(state):
        if state.allowlist is None:
            logger.warning("allowlist not applied, failing open", extra={"reason": safe_text(state.error, 300)})
        elif expired := state.allowlist.expired_ids(now):
            metrics.add_metric(name="AllowlistExpiredEntries", unit=MetricUnit.Count, value=len(expired))
            logger.warning(
                "allowlist entries expired and ignored", extra={"entries": [safe_text(e, 128) for e in expired]}
            )
    suppressed_by = state.allowlist.decide(event, now) if state.allowlist is not None else None
    if state.allowlist is None:
        metrics.add_metric(name="AllowlistInvalid", unit=MetricUnit.Count, value=1)

    update = build_update(
        event,
        enrich(event),
        window_seconds=config.window_seconds,
        retention_seconds=config.retention_seconds,
        now=now,
        suppressed_by=suppressed_by,
        allowlist_error=state.error,
    )
    try:
        response = dynamodb().update_item(TableName=config.table_name, **update)
    except ClientError as error:
        _count_retries(error.response.get("ResponseMetadata", {}))
        code = error.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException":
            metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
            return "duplicate"
        if code == "ValidationException" and ITEM_TOO_LARGE in error.response.get("Error", {}).get("Message", ""):
            metrics.add_metric(name="WindowFull", unit=MetricUnit.Count, value=1)
            logger.error("window item full", extra={"message_id": record.message_id, "key": update["Key"]})
            raise WindowFull(update["Key"]["pk"]["S"]) from error
        # Alarmed: the DLQ-depth alarm would only fire after every redelivery was spent.
        metrics.add_metric(name="WindowWriteErrors", unit=MetricUnit.Count, value=1)
        logger.warning("window write failed", extra={"message_id": record.message_id, "error_code": code})
        raise
    _count_retries(response.get("ResponseMetadata", {}))
    metrics.add_metric(name="WindowsWritten", unit=MetricUnit.Count, value=1)
    if suppressed_by:
        metrics.add_metric(name="EventsSuppressed", unit=MetricUnit.Count, value=1)
        return "suppressed"
    return "written"


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
