"""``codewatch findings`` on moto Security Hub, with findings built by the real ASFF builder.

moto ignores ``GetFindings`` filters, so these tests also prove the client-side filtering.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from codewatch.aggregate import AggregationKey
from codewatch.finding import GENERATOR_ID, build_finding
from codewatch.timeutil import format_time_ms
from codewatch.window_item import WindowSummary
from codewatch_cli.findings_cmd import format_findings_table
from codewatch_cli.main import main

ACCOUNT = "123456789012"
NOW = datetime.now(UTC).replace(microsecond=0)


def summary(user: str, src_ip: str, functions: tuple[str, ...], risk: int, age: timedelta) -> WindowSummary:
    window_start = (NOW - age).replace(minute=0, second=0)
    key = AggregationKey(
        src_ip,
        f"arn:aws:iam::{ACCOUNT}:user/{user}",
        "aws-cli/2.15",
        "IAMUser",
        "UpdateFunctionCode20150331v2",
        ACCOUNT,
    )
    pk = "K#" + hashlib.sha256(repr(key).encode()).hexdigest()[:32]
    arns = tuple(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}" for name in functions)
    return WindowSummary(
        pk=pk,
        sk=f"W#{window_start:%Y-%m-%dT%H:%M:%SZ}",
        key=key,
        window_start=window_start,
        window_end=window_start + timedelta(hours=1),
        count=len(functions) + 1,
        first_time=window_start + timedelta(minutes=5),
        last_time=window_start + timedelta(minutes=20),
        function_updated=tuple(sorted(functions)),
        risk_score=risk,
        suppressed_count=0,
        created_at=None,
        updated_at=None,
        expires_at=None,
        sets={"function_arns": arns},
    )


def finding(item: WindowSummary, age: timedelta) -> dict[str, Any]:
    stamp = format_time_ms(NOW - age)
    return build_finding(item, account_id=ACCOUNT, region="us-east-1", created_at=stamp, updated_at=stamp)


RECENT_MEDIUM = finding(summary("alice", "198.51.100.1", ("payments",), 63, timedelta(hours=1)), timedelta(hours=1))
RECENT_HIGH = finding(
    summary("mallory\x1b[31m", "203.0.113.66", ("auth", "billing"), 80, timedelta(hours=2)), timedelta(hours=2)
)
OLD_MEDIUM = finding(summary("bob", "198.51.100.2", ("reports",), 63, timedelta(days=3)), timedelta(days=3))
FOREIGN = {**RECENT_MEDIUM, "Id": "other-product/1", "GeneratorId": "some-other-detector"}
ARCHIVED = {**finding(summary("carol", "198.51.100.3", ("x",), 63, timedelta(hours=1)), timedelta(hours=1))}
ARCHIVED["RecordState"] = "ARCHIVED"


@pytest.fixture
def hub() -> Iterator[Any]:
    with mock_aws():
        securityhub = boto3.client("securityhub", region_name="us-east-1")
        securityhub.enable_security_hub()
        result = securityhub.batch_import_findings(Findings=[RECENT_MEDIUM, RECENT_HIGH, OLD_MEDIUM, FOREIGN, ARCHIVED])
        assert result["FailedCount"] == 0, result
        yield securityhub


def findings(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["findings", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def json_ids(out: str) -> list[str]:
    return [json.loads(line)["Id"] for line in out.splitlines()]


def test_table_lists_recent_codewatch_findings_newest_first(hub: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = findings(capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["SEVERITY", "TITLE", "ACTOR", "SOURCE", "FUNCTIONS", "COUNT", "FIRST_SEEN", "LAST_SEEN"]
    assert len(lines) == 3  # not the old one, not another product's, not the archived one
    assert lines[1].startswith("MEDIUM")
    assert f"arn:aws:iam::{ACCOUNT}:user/alice" in lines[1]
    assert "198.51.100.1" in lines[1]
    assert lines[2].startswith("HIGH")
    assert "auth,billing" in lines[2]
    assert "\x1b" not in out  # the attacker's escape sequence is shown escaped
    assert "\\u001b" in lines[2]
    assert "2 finding(s)" in err


def test_severity_since_limit_and_archived(hub: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert json_ids(findings(capsys, "--format", "json", "--severity", "high")[1]) == [RECENT_HIGH["Id"]]
    assert json_ids(findings(capsys, "--format", "json", "--since", "7d")[1]) == [
        RECENT_MEDIUM["Id"],
        RECENT_HIGH["Id"],
        OLD_MEDIUM["Id"],
    ]
    since = (NOW - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert json_ids(findings(capsys, "--format", "json", "--since", since)[1]) == [RECENT_MEDIUM["Id"]]
    assert findings(capsys, "--format", "json", "--severity", "CRITICAL,LOW")[1] == ""
    assert set(json_ids(findings(capsys, "--format", "json", "--include-archived")[1])) == {
        RECENT_MEDIUM["Id"],
        RECENT_HIGH["Id"],
        ARCHIVED["Id"],
    }
    status, out, err = findings(capsys, "--limit", "1")
    assert status == 0
    assert len(out.splitlines()) == 2
    assert "more exist beyond --limit 1" in err


def test_json_is_one_asff_finding_per_line(hub: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = findings(capsys, "--format", "json")
    assert (status, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(row["GeneratorId"] == GENERATOR_ID for row in rows)
    high = next(row for row in rows if row["Id"] == RECENT_HIGH["Id"])
    assert high["ProductFields"] == RECENT_HIGH["ProductFields"]
    assert high["Severity"]["Label"] == "HIGH"
    assert out.isascii()


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--severity", "SEVERE"], ["--since", "yesterday"], ["--limit", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["findings", *argv])
        assert exit_info.value.code == 2
        assert "invalid" in capsys.readouterr().err


def test_no_findings_prints_the_header_only(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        boto3.client("securityhub", region_name="us-east-1").enable_security_hub()
        status, out, err = findings(capsys, "--region", "us-east-1")
    assert (status, out.splitlines()[1:]) == (0, [])
    assert "0 finding(s)" in err


def test_format_findings_table_for_demo() -> None:
    table = format_findings_table([RECENT_HIGH])
    lines = table.splitlines()
    assert len(lines) == 2
    assert table.endswith("\n")
    assert lines[1].split()[0] == "HIGH"
    assert not any(line.endswith(" ") for line in lines)
    assert format_findings_table([]).startswith("SEVERITY")
    # Findings from elsewhere (or a hub edited by hand) may hold raw controls: the table escapes them.
    forged = {
        **RECENT_HIGH,
        "Title": "ok\x1b]0;pwned\x07\nFAKE LINE",
        "ProductFields": {"codewatch/user_arn": "\u202eevil"},
    }
    table = format_findings_table([forged])
    assert len(table.splitlines()) == 2
    assert "\x1b" not in table
    assert "\u202e" not in table
    assert "\\u001b" in table


def test_security_hub_not_enabled_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.stub import Stubber

    from codewatch_cli import findings_cmd

    real_client = findings_cmd.client

    def stubbed(args: Any, service: str) -> Any:
        securityhub = real_client(args, service)
        stubber = Stubber(securityhub)
        stubber.add_client_error(
            "get_findings",
            service_error_code="InvalidAccessException",
            service_message=f"Account {ACCOUNT} is not subscribed to AWS Security Hub",
        )
        stubber.activate()
        return securityhub

    monkeypatch.setattr(findings_cmd, "client", stubbed)
    status, out, err = findings(capsys, "--region", "eu-west-3")
    assert (status, out) == (2, "")
    assert err == (
        "codewatch findings: error: Security Hub is not enabled in eu-west-3 for this account "
        "(enable it, or pass the --region codewatch is deployed in)\n"
    )
