"""The allowlist as the aggregator sees it: read through Powertools Parameters, validated, cached.

Fail open: a missing, unreadable or invalid document never suppresses anything; the reason travels
with each event into its window item so the finding can say so. Transient failures (throttling,
5xx), once botocore's bounded retries are spent, raise ``AllowlistUnavailable`` so the SQS record is
redelivered rather than alerted on without the allowlist (which would flood findings during a CI burst).

At most one ``GetParameter`` per cache period per container: Powertools caches successes, and this
class caches failures for the same period (Powertools does not), so a missing parameter costs one
call per period, not one per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from codewatch.allowlist import Allowlist, AllowlistError, parse_allowlist


class AllowlistUnavailable(RuntimeError):
    """SSM could not be read for a transient reason; the record should be retried later."""


@dataclass(frozen=True, slots=True)
class AllowlistState:
    allowlist: Allowlist | None
    error: str | None  # why the allowlist is not applied (fail open), else None


def _describe_failure(error: GetParameterError) -> tuple[str, bool]:
    """``(reason, transient)`` for a Powertools error, from the botocore error it wraps."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ClientError):
        code = cause.response.get("Error", {}).get("Code", "Unknown")
        # botocore's standard retry mode marks an error it retried to the end: throttling, 5xx and the
        # like. Its classification, not a list of our own, decides what may succeed later.
        transient = bool(cause.response.get("ResponseMetadata", {}).get("MaxAttemptsReached"))
        return (f"parameter unreadable: {code}", transient)
    if isinstance(cause, BotoCoreError):
        return (f"parameter unreadable: {cause.__class__.__name__}", True)
    return (f"parameter unreadable: {error.__class__.__name__}", False)


class AllowlistSource:
    def __init__(
        self,
        provider: SSMProvider,
        parameter_name: str,
        max_age_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._name = parameter_name
        self._max_age = max_age_seconds
        self._clock = clock
        self._parsed: tuple[str, AllowlistState] | None = None
        self._failure: tuple[float, AllowlistState] | None = None
        self._reported: tuple[float, AllowlistState] | None = None

    def current(self) -> AllowlistState:
        if self._failure is not None and self._clock() - self._failure[0] < self._max_age:
            return self._failure[1]
        try:
            text = self._provider.get(self._name, max_age=self._max_age)
        except GetParameterError as error:
            reason, transient = _describe_failure(error)
            if transient:
                raise AllowlistUnavailable(reason) from error
            return self._remember_failure(reason)
        if not isinstance(text, str):
            return self._remember_failure("parameter value is not text")
        self._failure = None
        if self._parsed is None or self._parsed[0] != text:
            try:
                state = AllowlistState(allowlist=parse_allowlist(text), error=None)
            except AllowlistError as error:
                state = AllowlistState(allowlist=None, error=f"invalid document: {error}")
            self._parsed = (text, state)
        return self._parsed[1]

    def report_due(self, state: AllowlistState) -> bool:
        """True when ``state`` is new, or has not been reported for a cache period: the caller logs what
        matters about it (expired entries, failing open) once, not once per event."""
        now = self._clock()
        if self._reported is None or self._reported[1] is not state or now - self._reported[0] >= self._max_age:
            self._reported = (now, state)
            return True
        return False

    def _remember_failure(self, reason: str) -> AllowlistState:
        state = AllowlistState(allowlist=None, error=reason)
        self._failure = (self._clock(), state)
        return state
