"""End-to-end set-up: the synthesized template, moto server on loopback, a freshly provisioned pipeline."""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Iterator

import pytest

from codewatch_cli.demo import Pipeline
from codewatch_cli.emulator.server import moto_server
from tests.infrastructure.conftest import Synth, synthesize

REGION = "us-east-1"


@pytest.fixture(scope="session")
def e2e_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default app, except a one-second allowlist cache so a test can watch a change take effect."""
    return synthesize({"allowlist_cache_seconds": 1}, tmp_path_factory.mktemp("cdk-e2e"))


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    with moto_server(REGION) as url:
        yield url


@pytest.fixture
def pipeline(endpoint: str, e2e_synth: Synth) -> Pipeline:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return Pipeline(e2e_synth.template("Codewatch"), io.StringIO())
