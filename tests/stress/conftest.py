"""Stress set-up: moto server on loopback, the synthesized pipeline, and an ``Instrument`` on every client.

Clients inherit the hooks of the session they are made from, so a fresh default boto3 session gets the
instrument before the pipeline (pollers) or the handlers (on their first invocation) create theirs.
Backoff sleeps are shortened (botocore's standard mode, the publisher's own retries and quota pacing): a
fault test makes thousands of retries, and how long they wait is not what it checks.
"""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Iterator

import boto3
import pytest

from codewatch_cli.demo import Pipeline
from codewatch_cli.emulator.server import moto_server
from tests.infrastructure.conftest import Synth, synthesize
from tests.stress.instrument import Instrument

REGION = "us-east-1"


@pytest.fixture(scope="session")
def stress_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default app with a one-second allowlist cache, so a test can watch the parameter come back."""
    return synthesize({"allowlist_cache_seconds": 1}, tmp_path_factory.mktemp("cdk-stress"))


@pytest.fixture(scope="session")
def stress_endpoint() -> Iterator[str]:
    with moto_server(REGION) as url:
        yield url


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import publisher.handler

    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    monkeypatch.setattr(publisher.handler, "sleep", lambda _seconds: None)


@pytest.fixture
def instrument(no_backoff: None) -> Iterator[Instrument]:
    """A fresh default session carrying a fault-free instrument; tests set ``fault_rate`` and ``faults_active``."""
    saved = boto3.DEFAULT_SESSION
    boto3.setup_default_session(region_name=REGION)
    tool = Instrument(seed=20261204)
    tool.install(boto3.DEFAULT_SESSION.events)
    yield tool
    boto3.DEFAULT_SESSION = saved


@pytest.fixture
def function_log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def stress_pipeline(
    stress_endpoint: str, stress_synth: Synth, instrument: Instrument, function_log: io.StringIO
) -> Pipeline:
    request = urllib.request.Request(f"{stress_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return Pipeline(stress_synth.template("Codewatch"), function_log)
