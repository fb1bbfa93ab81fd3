"""Count, fault and watch the AWS calls the pipeline makes, through botocore's event system.

One ``Instrument`` is installed on a fresh default boto3 session before the pipeline creates any client;
every client made from that session (the pollers', the handlers', the harness's) carries a copy of its
hooks, so nothing in the code under test is patched:

- ``before-send`` (every HTTP attempt, retries included) counts requests per service and operation and,
  while ``faults_active`` is set, answers a seeded share of them with throttling or a 5xx instead of the
  service. Half of the faults on idempotent operations are *lost responses*: the request reaches moto and
  takes effect, then the caller sees the error, as after a timeout; a retried ``UpdateItem`` must then be
  recognised as a duplicate rather than counted twice.
- ``before-call`` (every API call, before retries) counts calls, and records each finding that
  ``BatchImportFindings`` sends (Id, UpdatedAt, a digest of the rest) to check UpdatedAt never goes back.
- ``overrides`` answer chosen operations with a fixed error (a broken dependency, e.g. Security Hub off).

The benchmark (``scripts/bench_pipeline.py``) uses the counting half only; the counts do not depend on timing.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.httpsession import URLLib3Session

from codewatch.timeutil import parse_time

# Services faulted by default: the pipeline's stores and queues. dynamodb-streams is DynamoDB's stream API.
FAULT_SERVICES = frozenset({"dynamodb", "dynamodb-streams", "sqs", "ssm", "securityhub"})
# Where a lost response is safe to emulate: the caller's retry meets an idempotent operation. Not
# ReceiveMessage (the messages would sit in flight for the visibility timeout, which never passes here) nor
# ChangeMessageVisibility (moto refuses a second change of a message no longer in flight).
LOST_RESPONSE_OPERATIONS = frozenset(
    {
        ("dynamodb", "UpdateItem"),
        ("securityhub", "BatchImportFindings"),
        ("ssm", "GetParameter"),
        ("sqs", "DeleteMessageBatch"),
        ("dynamodb-streams", "GetRecords"),
    }
)
# (status, code) per service: a throttle and a server error, each in the service's own words and all of them
# in the sets botocore's standard retry mode and the publisher's own retry treat as transient.
ERRORS: dict[str, tuple[tuple[int, str], tuple[int, str]]] = {
    "dynamodb": ((400, "ProvisionedThroughputExceededException"), (500, "InternalServerError")),
    "dynamodb-streams": ((400, "LimitExceededException"), (500, "InternalServerError")),
    "sqs": ((400, "RequestThrottled"), (500, "InternalError")),
    "ssm": ((400, "ThrottlingException"), (500, "InternalServerError")),
    "securityhub": ((429, "TooManyRequestsException"), (500, "InternalException")),
}


class _Body:
    """The raw stream botocore reads an ``AWSResponse`` body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def error_response(url: str, status: int, code: str, message: str) -> AWSResponse:
    """An AWS JSON / REST-JSON error response (every faulted service speaks one of the two)."""
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, status, headers, _Body(body))


@dataclass(frozen=True, slots=True)
class ImportedFinding:
    """One finding as one ``BatchImportFindings`` call sent it."""

    id: str
    updated_at: datetime
    content: str  # digest of the finding without UpdatedAt


def _digest(finding: dict[str, Any]) -> str:
    rest = {key: value for key, value in finding.items() if key != "UpdatedAt"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()


class Instrument:
    def __init__(
        self,
        fault_rate: float = 0.0,
        seed: int = 0,
        services: Iterable[str] = FAULT_SERVICES,
        lost_response_share: float = 0.5,
    ) -> None:
        self.fault_rate = fault_rate
        self.services = frozenset(services)
        self.lost_response_share = lost_response_share
        self.seed = seed
        # One seeded stream per service: a service's fault pattern does not shift when another's call count does.
        self._rngs: dict[str, random.Random] = {}
        self.faults_active = False
        self.requests: Counter[tuple[str, str]] = Counter()  # HTTP attempts
        self.calls: Counter[tuple[str, str]] = Counter()  # API calls (retries not counted)
        self.faults: Counter[tuple[str, str, str]] = Counter()  # (service, operation, kind)
        self.imports: list[ImportedFinding] = []
        self.findings_sent = 0
        # (service, operation) -> what to answer instead of calling the service; None lets the call through.
        self.overrides: dict[tuple[str, str], Callable[[Any], AWSResponse | None]] = {}
        self._lock = threading.Lock()  # hooks may run on several threads (the concurrency test)
        self._http: URLLib3Session | None = None

    def install(self, events: Any) -> None:
        """Register on a session's (or client's) event system; clients created afterwards inherit the hooks."""
        events.register_first("before-send", self._before_send)
        events.register("before-call", self._before_call)

    @staticmethod
    def _operation(event_name: str) -> tuple[str, str]:
        _, service, operation = event_name.split(".", 2)
        return service, operation

    def _before_call(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        key = self._operation(event_name)
        with self._lock:
            self.calls[key] += 1
            if key == ("securityhub", "BatchImportFindings"):
                # before-call carries the serialized request: REST-JSON, the findings in the body.
                findings = json.loads(params["body"] or b"{}").get("Findings") or []
                self.findings_sent += len(findings)
                self.imports.extend(ImportedFinding(f["Id"], parse_time(f["UpdatedAt"]), _digest(f)) for f in findings)

    def _before_send(self, event_name: str, request: Any, **_: Any) -> AWSResponse | None:
        key = service, operation = self._operation(event_name)
        with self._lock:
            self.requests[key] += 1
            override = self.overrides.get(key)
            fault = None
            rng = self._rngs.setdefault(service, random.Random(f"{self.seed}:{service}"))
            if self.faults_active and service in self.services and rng.random() < self.fault_rate:
                kind = rng.choice(("throttle", "5xx"))
                lost = key in LOST_RESPONSE_OPERATIONS and rng.random() < self.lost_response_share
                fault = (kind, lost)
                self.faults[(service, operation, kind + (" (lost response)" if lost else ""))] += 1
        if override is not None:
            answer = override(request)
            if answer is not None:
                return answer
        if fault is None:
            return None
        kind, lost = fault
        if lost:
            # The request takes effect on the server; only its answer is lost on the way back.
            if self._http is None:
                self._http = URLLib3Session()
            self._http.send(request)
        status, code = ERRORS[service][0 if kind == "throttle" else 1]
        return error_response(request.url, status, code, f"injected {kind}")

    # --- what the counts mean --------------------------------------------------------------------

    def request_count(self, service: str, operation: str | None = None) -> int:
        return sum(n for (s, o), n in self.requests.items() if s == service and operation in (None, o))

    def call_count(self, service: str, operation: str | None = None) -> int:
        return sum(n for (s, o), n in self.calls.items() if s == service and operation in (None, o))

    def updated_at_problems(self) -> list[str]:
        """Each place a finding's UpdatedAt went back, or stayed put while its content changed."""
        problems: list[str] = []
        last: dict[str, ImportedFinding] = {}
        for sent in self.imports:
            previous = last.get(sent.id)
            if previous is not None:
                if sent.updated_at < previous.updated_at:
                    problems.append(f"{sent.id}: UpdatedAt {sent.updated_at} after {previous.updated_at}")
                elif sent.updated_at == previous.updated_at and sent.content != previous.content:
                    problems.append(f"{sent.id}: content changed with the same UpdatedAt {sent.updated_at}")
            last[sent.id] = sent
        return problems
