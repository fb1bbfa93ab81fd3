"""Publisher Lambda: window table stream → one living Security Hub finding per actor key and window.

The DynamoDB stream (``NEW_IMAGE``) delivers a record for every counted event. The publisher works on the
batch as a whole, because a burst of 1,000 events on one key must cost one import, not 1,000:

1. ``REMOVE`` records (TTL expiry, made by ``dynamodb.amazonaws.com``) and suppressed windows raise nothing;
2. only the newest image per finding ``Id`` in the batch is kept (stream order is per-item order);
3. each finding is built (``codewatch.finding``) and checked against the Security Hub model
   (``codewatch.asff``): a finding that fails is a bug, logged loudly and never sent;
4. findings go out in ``BatchImportFindings`` calls of at most 100, paced by a token bucket (10 calls/s,
   burst 30), with throttling and 5xx retried here (botocore's own retries are off, so nothing
   double-retries), bounded by attempts and by the invocation's remaining time;
5. ``FailedFindings``, undecodable images and exhausted retries become batch item failures.

Partial batch response for a stream: Lambda resumes from the lowest reported sequence number, so the
first failed record and every record after it are reported; records before it are checkpointed. With
bisect-on-error and a retry limit on the event source mapping, a poison record ends in the on-failure
destination instead of blocking the shard.

Timestamps: ``CreatedAt`` is the item's ``created_at`` (its first alerting write, ``if_not_exists``). The
import of the window's first alerting event sends ``UpdatedAt`` equal to it, as Security Hub expects of a
new finding; every later import sends the later of the item's ``updated_at`` and this container's clock.
Imports of one window are sequential on its stream shard, so each is newer than the last even when the
aggregator containers' clocks disagree or two events were stamped in the same millisecond.

Organization mode (``MEMBER_FINDINGS_ROLE_NAME``): a window whose ``aws_account_id`` is another account is
imported into that account through ``arn:{partition}:iam::{member}:role/{name}``, with that account's
``AwsAccountId`` and ``ProductArn``. If the role cannot be assumed, the records are reported failed: the
finding is never silently moved to the security account, where it would name the wrong account. A window
without a valid account ID (CloudTrail left ``recipientAccountId`` out) is imported into the security account.
"""

from __future__ import annotations

import os
import random
import re
import struct
import threading
import time
from binascii import Error as Base64Error
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from codewatch.asff import validate_finding
from codewatch.finding import RUNBOOK_URL, build_finding, finding_id
from codewatch.sanitize import safe_text
from codewatch.timeutil import format_time_ms, parse_time
from codewatch.window_item import WindowSummary, decode_item

if TYPE_CHECKING:
    # Types only: importing Powertools' batch package would load the whole batch utility (asyncio, every
    # event data class) into the cold start of a handler that does not use it.
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
#: What a call to AWS can raise once botocore gives up: answered with an error, or not answered at all.
AWS_CALL_ERRORS = (ClientError, BotocoreConnectionError, HTTPClientError)

MAX_FINDINGS_PER_CALL = 100
MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 5.0
# Keep this much of the invocation for the response; a retry that cannot finish in time is not started.
TIME_RESERVE_MS = 5_000
RETRYABLE_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "LimitExceededException", "InternalException"}
)
# Botocore's retries are off: throttling, 5xx and connection errors are retried here, and counted.
AWS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=3, read_timeout=10)
ASSUMED_ROLE_MARGIN = timedelta(minutes=5)
_ACCOUNT = re.compile(r"^\d{12}$")
DECODE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, struct.error, Base64Error)

sleep: Callable[[float], None] = time.sleep  # tests replace it
clock: Callable[[], float] = time.monotonic


class TokenBucket:
    """Security Hub's ``BatchImportFindings`` quota (10 requests/s, burst 30), per container."""

    def __init__(self, rate: float = 10.0, burst: float = 30.0) -> None:
        self.rate, self.burst = rate, burst
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.tokens = self.burst
        self.stamp: float | None = None

    def acquire(self) -> None:
        with self.lock:
            now = clock()
            if self.stamp is not None:
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                wait = (1 - self.tokens) / self.rate
                sleep(wait)
                self.stamp = now + wait
                self.tokens = 1.0
            self.tokens -= 1


bucket = TokenBucket()


@dataclass(frozen=True, slots=True)
class Target:
    """Where a finding is imported: the account it names and the client that can write there."""

    account_id: str
    client: Any


@dataclass(slots=True)
class Pending:
    """The newest image of one finding in this batch, and every record folded into it."""

    summary: WindowSummary
    indexes: list[int] = field(default_factory=list)


@cache
def securityhub_client() -> Any:
    """The container's own Security Hub client, created on first use and reused across invocations."""
    return boto3.client("securityhub", config=AWS_CONFIG)


@cache
def sts_client() -> Any:
    return boto3.client("sts", config=Config(retries={"mode": "standard", "max_attempts": 3}))


_member_clients: dict[str, tuple[Any, datetime]] = {}


def member_client(account_id: str, partition: str, role_name: str) -> Any:
    """A Security Hub client in ``account_id`` through the organization role, cached until near expiry."""
    cached = _member_clients.get(account_id)
    if cached and cached[1] - ASSUMED_ROLE_MARGIN > datetime.now(UTC):
        return cached[0]
    response = sts_client().assume_role(
        RoleArn=f"arn:{partition}:iam::{account_id}:role/{role_name}",
        RoleSessionName="codewatch-publisher",
        DurationSeconds=3600,
    )
    credentials = response["Credentials"]
    client = boto3.client(
        "securityhub",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=AWS_CONFIG,
    )
    expiry = credentials["Expiration"]
    if isinstance(expiry, str):
        expiry = parse_time(expiry)
    _member_clients[account_id] = (client, expiry)
    return client


def reset_caches() -> None:
    """Forget clients and assumed-role credentials (tests; never needed in a running container)."""
    securityhub_client.cache_clear()
    sts_client.cache_clear()
    _member_clients.clear()
    bucket.reset()


def _retryable(error: Exception) -> bool:
    if isinstance(error, BotocoreConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in RETRYABLE_CODES or status >= 500
    return False


def import_findings(client: Any, findings: list[dict[str, Any]], context: LambdaContext | None) -> dict[str, Any]:
    """One ``BatchImportFindings`` call with paced, jittered, bounded retries of throttling and 5xx.

    Raises the last error when it is not retryable, attempts are spent or the invocation is nearly out of time.
    """
    attempt = 0
    while True:
        attempt += 1
        bucket.acquire()
        try:
            return client.batch_import_findings(Findings=findings)
        except AWS_CALL_ERRORS as error:
            if not _retryable(error) or attempt >= MAX_ATTEMPTS:
                raise
            # Full jitter: spread the retries of concurrent shards instead of synchronising them.
            delay = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))  # noqa: S311
            if context is not None and context.get_remaining_time_in_millis() - delay * 1000 < TIME_RESERVE_MS:
                raise
            metrics.add_metric(name="ImportRetries", unit=MetricUnit.Count, value=1)
            logger.warning(
                "BatchImportFindings throttled or failed; retrying",
                extra={"attempt": attempt, "delay_seconds": round(delay, 3), "error": _error_code(error)},
            )
            sleep(delay)


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return safe_text(error.response.get("Error", {}).get("Code", "ClientError"), 100)
    return type(error).__name__


def _timestamps(summary: WindowSummary, now: datetime) -> tuple[str, str]:
    """``CreatedAt``/``UpdatedAt`` for an import of this image (see the module docstring)."""
    created = summary.created_at
    if created is None:
        raise ValueError("the image has no created_at")
    if summary.count == 1:
        return created, created  # the window's first alerting event: a new finding
    # Imports of one window are sequential on its stream shard, and this container's clock moves on
    # between them: the later of the item's own stamp and now is newer than any earlier import, whatever
    # the skew between the aggregator containers that stamped the item.
    updated = max(summary.updated_at or created, format_time_ms(now), created)
    return created, updated


@dataclass(slots=True)
class Batch:
    """One invocation's records and what became of them."""

    records: Sequence[Mapping[str, Any]]
    failed: set[int] = field(default_factory=set)

    def sequence_number(self, index: int) -> str:
        return str((self.records[index].get("dynamodb") or {}).get("SequenceNumber", ""))

    def fail(self, indexes: Iterable[int]) -> None:
        self.failed.update(indexes)

    def response(self) -> PartialItemFailureResponse:
        if not self.failed:
            return {"batchItemFailures": []}
        # Lambda restarts the shard from the lowest reported sequence number: report it and all after it.
        first = min(self.failed)
        return {
            "batchItemFailures": [
                {"itemIdentifier": self.sequence_number(index)} for index in range(first, len(self.records))
            ]
        }


def collapse(batch: Batch) -> dict[str, Pending]:
    """The newest image per finding ``Id``; undecodable images are failed here with their sequence number."""
    newest: dict[str, Pending] = {}
    for index, record in enumerate(batch.records):
        event_name = record.get("eventName")
        if event_name == "REMOVE":
            continue  # TTL expiry (or a manual delete): a finding outlives its window item
        image = (record.get("dynamodb") or {}).get("NewImage")
        try:
            if event_name not in ("INSERT", "MODIFY") or not isinstance(image, Mapping):
                raise ValueError(f"unexpected stream record (eventName {safe_text(event_name, 32)}, no NewImage)")
            summary = decode_item(image)
        except DECODE_ERRORS as error:
            metrics.add_metric(name="FindingValidationErrors", unit=MetricUnit.Count, value=1)
            logger.error(
                "stream record is not a window item; reporting it failed",
                extra={
                    "sequence_number": batch.sequence_number(index),
                    "event_id": safe_text(record.get("eventID", ""), 64),
                    "error": f"{type(error).__name__}: {safe_text(error, 300)}",
                },
            )
            batch.fail([index])
            continue
        if summary.count == 0:
            continue  # only suppressed events so far: counted for audit, but they raise nothing
        key = finding_id(summary)
        pending = newest.get(key)
        if pending is None:
            newest[key] = Pending(summary, [index])
        else:
            # Records for one item arrive in order on its shard, so a later record is a newer image; the
            # count only grows, so an out-of-order replay (a hand-driven stream) cannot roll a finding back.
            if summary.count >= pending.summary.count:
                pending.summary = summary
            pending.indexes.append(index)
    return newest


@dataclass(frozen=True, slots=True)
class Environment:
    account_id: str
    partition: str
    region: str
    runbook_url: str
    member_role_name: str | None

    @classmethod
    def of(cls, context: LambdaContext) -> Environment:
        # arn:partition:lambda:region:account:function:name: no STS call needed to know who we are.
        parts = context.invoked_function_arn.split(":")
        return cls(
            account_id=parts[4],
            partition=parts[1],
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or parts[3],
            runbook_url=os.environ.get("RUNBOOK_URL") or RUNBOOK_URL,
            member_role_name=os.environ.get("MEMBER_FINDINGS_ROLE_NAME") or None,
        )


def target_for(summary: WindowSummary, env: Environment) -> Target:
    member = summary.key.aws_account_id
    if env.member_role_name and member and member != env.account_id and _ACCOUNT.match(member):
        return Target(member, member_client(member, env.partition, env.member_role_name))
    return Target(env.account_id, securityhub_client())


def publish(records: Sequence[Mapping[str, Any]], env: Environment, context: LambdaContext | None) -> Batch:
    batch = Batch(records)
    now = datetime.now(UTC)
    # Per target account: the findings to send, and which records each finding Id stands for.
    outgoing: dict[str, tuple[Target, list[dict[str, Any]]]] = {}
    owners: dict[tuple[str, str], list[int]] = {}
    for key, pending in collapse(batch).items():
        try:
            target = target_for(pending.summary, env)
        except AWS_CALL_ERRORS as error:
            metrics.add_metric(name="FailedFindings", unit=MetricUnit.Count, value=1)
            logger.error(
                "cannot assume the member account's findings role; the finding is not moved elsewhere",
                extra={"finding_id": key, "account": pending.summary.key.aws_account_id, "error": _error_code(error)},
            )
            batch.fail(pending.indexes)
            continue
        try:
            created, updated = _timestamps(pending.summary, now)
        except ValueError as error:
            problems = [str(error)]
            finding: dict[str, Any] | None = None
        else:
            finding = build_finding(
                pending.summary,
                account_id=target.account_id,
                region=env.region,
                partition=env.partition,
                created_at=created,
                updated_at=updated,
                runbook_url=env.runbook_url,
            )
            problems = validate_finding(finding, securityhub_client().meta.service_model)
        if problems or finding is None:
            # The builder's contract is that every item yields a valid finding: this is a bug to fix.
            metrics.add_metric(name="FindingValidationErrors", unit=MetricUnit.Count, value=1)
            logger.error(
                "finding failed ASFF validation; not sent",
                extra={"finding_id": key, "problems": [safe_text(p, 300) for p in problems[:20]]},
            )
            batch.fail(pending.indexes)
            continue
        outgoing.setdefault(target.account_id, (target, []))[1].append(finding)
        owners[(target.account_id, key)] = pending.indexes

    imported = 0
    for account, (target, findings) in outgoing.items():
        for start in range(0, len(findings), MAX_FINDINGS_PER_CALL):
            chunk = findings[start : start + MAX_FINDINGS_PER_CALL]
            imported += _send(target, chunk, [owners[(account, f["Id"])] for f in chunk], batch, context)
    # Emitted even when zero, so the dashboard's line is continuous and a quiet batch is visible as such.
    metrics.add_metric(name="FindingsImported", unit=MetricUnit.Count, value=imported)
    return batch


def _send(
    target: Target,
    chunk: list[dict[str, Any]],
    owners: list[list[int]],
    batch: Batch,
    context: LambdaContext | None,
) -> int:
    """Import one chunk; fail the records of every finding not imported. Returns how many were imported."""
    by_id = {finding["Id"]: indexes for finding, indexes in zip(chunk, owners, strict=True)}
    try:
        response = import_findings(target.client, chunk, context)
    except AWS_CALL_ERRORS as error:
        metrics.add_metric(name="FailedFindings", unit=MetricUnit.Count, value=len(chunk))
        logger.error(
            "BatchImportFindings failed; reporting the chunk's records failed",
            extra={"account": target.account_id, "findings": len(chunk), "error": _error_code(error)},
        )
        for indexes in by_id.values():
            batch.fail(indexes)
        return 0
    failed = response.get("FailedFindings") or []
    if failed:
        metrics.add_metric(name="FailedFindings", unit=MetricUnit.Count, value=len(failed))
    for failure in failed:
        finding_key = failure.get("Id", "")
        logger.error(
            "Security Hub refused a finding",
            extra={
                "finding_id": safe_text(finding_key, 512),
                "error_code": safe_text(failure.get("ErrorCode", ""), 100),
                "error_message": safe_text(failure.get("ErrorMessage", ""), 500),
            },
        )
        # An Id we did not send cannot be placed; fail the whole chunk rather than lose a refusal.
        batch.fail(by_id.get(finding_key) or [i for indexes in by_id.values() for i in indexes])
    return int(response.get("SuccessCount", len(chunk) - len(failed)))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records") or []
    batch = publish(records, Environment.of(context), context)
    if batch.failed:
        logger.warning(
            "reporting batch item failures",
            extra={"records": len(records), "failed": len(batch.failed), "first_failed": min(batch.failed)},
        )
    return batch.response()
