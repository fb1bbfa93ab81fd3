"""The pipeline under injected faults: 20% of DynamoDB, SQS, SSM and Security Hub requests throttled or 5xx.

Where the faults go (a decision, see the README, "Performance and cost"): into *every* request to those services while
events flow, the handlers' and the emulated event-source pollers' alike. The handlers must cope on their own
(botocore's bounded retries, partial batch responses, the publisher's paced retries); the pollers stand for
Lambda's service, which retries its own SQS and stream reads, so their clients retry too
(``emulator.runtime.POLLER_CONFIG``). Half the faults on idempotent operations are lost responses: the write
happened, the caller saw an error and retried. Harness calls (reading findings, counting) run with faults off.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from codewatch.asff import validate_finding
from codewatch_cli.demo import Pipeline
from tests.e2e.test_pipeline import finding_rows, hunt
from tests.stress.harness import (
    burst,
    feed,
    metrics_emitted,
    output_lines,
    redrive_ingest_dlq,
    redrive_stream_failures,
    unescaped_controls,
)
from tests.stress.instrument import Instrument

FAULT_RATE = 0.2
FAULTED = ("dynamodb", "dynamodb-streams", "sqs", "ssm", "securityhub")


def drain_with_redrives(pipeline: Pipeline, instrument: Instrument, rounds: int = 5) -> int:
    """Settle, then redrive both dead-letter destinations until they stay empty. Returns messages redriven.

    The redrive is an operator's action, made with faults off; the drains after it run with faults on.
    """
    redriven = 0
    for _ in range(rounds):
        pipeline.settle()
        active, instrument.faults_active = instrument.faults_active, False
        moved = redrive_ingest_dlq(pipeline) + redrive_stream_failures(pipeline)
        instrument.faults_active = active
        redriven += moved
        if not moved:
            return redriven
    raise AssertionError(f"dead letters keep coming back after {rounds} redrives")


@pytest.mark.parametrize(
    "events", [pytest.param(1_000, id="1000"), pytest.param(5_000, id="5000", marks=pytest.mark.slow)]
)
def test_faults_lose_nothing_and_count_nothing_twice(
    stress_pipeline: Pipeline,
    instrument: Instrument,
    function_log: io.StringIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    events: int,
) -> None:
    records = burst(events, seed=events)
    instrument.fault_rate = FAULT_RATE
    instrument.faults_active = True
    assert feed(stress_pipeline, records) == events
    redriven = drain_with_redrives(stress_pipeline, instrument)
    instrument.faults_active = False

    # Every event counted exactly once (or redriven from a DLQ and then counted), whatever was retried.
    assert stress_pipeline.dead_letters() == dict.fromkeys(stress_pipeline.dead_letters(), 0)
    assert stress_pipeline.window_counts() == (events, 0)
    findings = stress_pipeline.findings()
    assert finding_rows(findings) == hunt(records, tmp_path, capsys)
    assert all(validate_finding(finding) == [] for finding in findings)
    # No finding's UpdatedAt ever went back, and it moved whenever the finding's content did.
    assert instrument.imports, "no BatchImportFindings call was seen"
    assert instrument.updated_at_problems() == []

    # The faults really happened, everywhere, and the retried writes were recognised, not double counted.
    faulted = {service for service, _, _ in instrument.faults}
    assert faulted == set(FAULTED), instrument.faults
    assert instrument.faults[("dynamodb", "UpdateItem", "throttle (lost response)")] > 0
    metrics = metrics_emitted(output_lines(function_log))
    assert metrics["DuplicateEvents"] > 0
    assert metrics["Retries"] > 0
    assert metrics["ImportRetries"] > 0
    assert unescaped_controls(function_log) == []
    print(f"faults: {sum(instrument.faults.values())}, redriven: {redriven}, metrics: {dict(metrics)}")
