"""The whole pipeline as deployed, on moto server: rule → queue → aggregator → table → stream → publisher."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from codewatch.asff import validate_finding
from codewatch.finding import HUNT_FIELDS
from codewatch_cli.demo import Pipeline
from codewatch_cli.main import main
from codewatch_cli.scenario import ALLOWLIST, public_samples, story
from tests.infrastructure.conftest import Synth
from tests.support.cloudtrail import code_update


def hunt(
    records: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], allowlist: dict | None = None
) -> list[dict]:
    """``codewatch hunt --window 60m --format json`` on the same records."""
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    argv = ["hunt", "--window", "60m", "--format", "json", str(events)]
    if allowlist is not None:
        path = tmp_path / "allowlist.json"
        path.write_text(json.dumps(allowlist), encoding="utf-8")
        argv[1:1] = ["--allowlist", str(path)]
    capsys.readouterr()
    main(argv)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return sorted(({k: row.get(k) for k in HUNT_FIELDS} for row in rows), key=json.dumps)


def finding_rows(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hunt row each finding carries in ProductFields (``codewatch/<field>``)."""
    rows = []
    for finding in findings:
        fields = finding["ProductFields"]
        row: dict[str, Any] = {name: fields.get(f"codewatch/{name}") for name in HUNT_FIELDS}
        row["count"] = int(row["count"])
        row["function_updated"] = json.loads(row["function_updated"])
        rows.append(row)
    return sorted(rows, key=json.dumps)


def test_events_become_findings_equal_to_hunt(
    pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = story() + public_samples()
    pipeline.set_allowlist(json.dumps(ALLOWLIST))
    assert pipeline.run(records) == len(records)
    findings = pipeline.findings()
    assert findings, "no findings"
    assert finding_rows(findings) == hunt(records, tmp_path, capsys, ALLOWLIST)
    for finding in findings:
        assert validate_finding(finding) == []
    # The attacker's burst is one finding, raised by the pentest user agent and the long-term key.
    [attack] = [f for f in findings if f["ProductFields"].get("codewatch/user_arn", "").endswith(":user/build-bot")]
    assert attack["ProductFields"]["codewatch/count"] == "9"
    assert attack["Severity"]["Label"] == "CRITICAL"
    assert {r["Id"] for r in attack["Resources"]} == {
        f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        for name in ("payments-api", "auth-authorizer", "customer-export")
    }
    _matched, suppressed = pipeline.window_counts()
    assert suppressed == 12  # the CI role's deploys, counted for audit
    assert pipeline.dead_letters()["IngestQueueDlqC58A21D9"] == 1  # the malformed event


def test_each_event_put_three_times_changes_no_count(pipeline: Pipeline) -> None:
    records = story()
    pipeline.run(records)
    before = {f["Id"]: f["ProductFields"]["codewatch/count"] for f in pipeline.findings()}
    updated_before = {f["Id"]: f["UpdatedAt"] for f in pipeline.findings()}
    pipeline.run(records)
    pipeline.run(records)
    after = pipeline.findings()
    assert {f["Id"]: f["ProductFields"]["codewatch/count"] for f in after} == before
    assert all(f["UpdatedAt"] >= updated_before[f["Id"]] for f in after)


def test_findings_update_in_place_as_the_window_grows(pipeline: Pipeline) -> None:
    first = [code_update(event_id=f"a{n}", event_time=f"2026-11-30T10:{n:02d}:00Z") for n in range(3)]
    later = [
        code_update(event_id=f"b{n}", event_time=f"2026-11-30T10:{30 + n:02d}:00Z", function="orders") for n in range(2)
    ]
    pipeline.run(first)
    [created] = pipeline.findings()
    pipeline.run(later)
    [updated] = pipeline.findings()
    assert updated["Id"] == created["Id"]
    assert updated["CreatedAt"] == created["CreatedAt"]
    assert updated["UpdatedAt"] > created["UpdatedAt"]
    assert updated["ProductFields"]["codewatch/count"] == "5"
    assert json.loads(updated["ProductFields"]["codewatch/function_updated"]) == ["orders", "payments-api"]


def test_allowlist_change_mid_run_suppresses_after_cache_age(pipeline: Pipeline) -> None:
    def attacker(n: int) -> dict[str, Any]:
        return code_update(
            event_id=f"m{n}", event_time=f"2026-11-30T11:{n:02d}:00Z", user_arn="arn:aws:iam::123456789012:user/ops"
        )

    pipeline.run([attacker(0)])
    entry = {"id": "ops-user", "reason": "ops runbook automation", "match": {"principal_arn": ["*:user/ops"]}}
    pipeline.set_allowlist(json.dumps({"version": 1, "entries": [entry]}))
    time.sleep(1.2)  # the e2e template's allowlist cache age is one second
    pipeline.run([attacker(1), attacker(2)])
    matched, suppressed = pipeline.window_counts()
    assert (matched, suppressed) == (1, 2)
    [finding] = pipeline.findings()
    assert finding["ProductFields"]["codewatch/count"] == "1"


def test_malformed_message_goes_to_dlq_and_others_are_processed(pipeline: Pipeline) -> None:
    sqs = boto3.client("sqs", region_name=pipeline.region)
    queue = pipeline.aggregator.queue_url
    sqs.send_message(QueueUrl=queue, MessageBody="this is not an EventBridge envelope")
    pipeline.run([code_update(event_id="good-1"), code_update(event_id="good-2")])
    [finding] = pipeline.findings()
    assert finding["ProductFields"]["codewatch/count"] == "2"
    dead = pipeline.dead_letters()
    assert dead["IngestQueueDlqC58A21D9"] == 1
    assert dead["PublishingFailureQueueA854F16A"] == 0


def test_demo_json_output_parses_and_validates(e2e_synth: Synth, capsys: pytest.CaptureFixture[str]) -> None:
    template = e2e_synth.template_path("Codewatch")
    assert main(["demo", "--format", "json", "--template", str(template)]) == 0
    lines = capsys.readouterr().out.splitlines()
    findings = [json.loads(line) for line in lines]
    assert len(findings) >= 3
    for finding in findings:
        assert validate_finding(finding) == []
