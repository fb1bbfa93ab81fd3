"""``codewatch hunt`` end to end: in-process through ``main(argv)``, plus the installed console script."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codewatch_cli import inputs
from codewatch_cli.main import main
from tests.support.cloudtrail import code_update, envelope

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
NOISE = {
    "eventVersion": "1.09",
    "eventTime": "2026-11-30T10:00:00Z",
    "eventSource": "sts.amazonaws.com",
    "eventName": "GetCallerIdentity",
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/dev"},
}
ALICE = {"user_arn": "arn:aws:iam::123456789012:user/alice", "src_ip": "198.51.100.1"}
BOB = {"user_arn": "arn:aws:iam::123456789012:user/bob", "src_ip": "198.51.100.2"}
CAROL = {"user_arn": "arn:aws:iam::123456789012:user/carol", "src_ip": "198.51.100.3"}
DAVE = {"user_arn": "arn:aws:iam::123456789012:user/dave", "src_ip": "198.51.100.4"}


def hunt(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    status = main(["hunt", "--format", "json", *argv])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def jsonl(*documents: Any) -> bytes:
    return b"".join(json.dumps(document).encode() + b"\n" for document in documents)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A folder with every input shape, good and bad."""
    root = tmp_path / "logs"
    s3 = root / "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/30"
    trail = {"Records": [NOISE, code_update(**ALICE, function="a"), NOISE, code_update(**ALICE, function="b")]}
    write(s3 / "123456789012_CloudTrail_us-east-1_20261130T1000Z_x.json.gz", gzip.compress(json.dumps(trail).encode()))
    lines = (
        jsonl(code_update(**BOB), NOISE) + b'{"eventName": "UpdateFunctionCode20150331v2", "eventSou\n' + jsonl(NOISE)
    )
    write(root / "records.jsonl", lines)
    write(root / "bus/envelopes.jsonl.gz", gzip.compress(jsonl(envelope(code_update(**CAROL)), envelope(NOISE))))
    write(root / "pretty.json", json.dumps([code_update(**DAVE)], indent=3).encode())
    good = bytearray(gzip.compress(json.dumps(trail).encode()))
    good[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    write(root / "corrupt.json.gz", bytes(good))
    write(root / "truncated.json.gz", gzip.compress(json.dumps(trail).encode())[:-30])
    write(root / ".hidden/ignored.json", jsonl(code_update(user_arn="arn:aws:iam::123456789012:user/ghost")))
    return root


def test_mixed_folder_rows_and_error_report(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, rows, err = hunt(capsys, str(mixed))
    assert status == 1
    by_user = {row["user_arn"].rsplit("/", 1)[1]: row for row in rows}
    assert set(by_user) == {"alice", "bob", "carol", "dave"}
    assert (by_user["alice"]["count"], by_user["alice"]["function_updated"]) == (2, ["a", "b"])
    assert all(by_user[name]["count"] == 1 for name in ("bob", "carol", "dave"))
    row = by_user["alice"]
    assert list(row) == [
        "src_ip", "user_arn", "user_agent", "user_type", "eventName", "aws_account_id",
        "count", "firstTime", "lastTime", "function_updated",
    ]  # fmt: skip
    assert row["firstTime"] == "2026-11-30T10:15:00Z"
    assert error_lines(err) == [
        f"codewatch hunt: error: {mixed}/corrupt.json.gz: corrupt gzip data (CRC check failed)",
        f"codewatch hunt: error: {mixed}/records.jsonl:3: not valid JSON (truncated: unterminated string)",
        f"codewatch hunt: error: {mixed}/truncated.json.gz: truncated gzip file (it ends before the end of its "
        "compressed data)",
    ]
    assert "Traceback" not in err


def test_output_is_the_same_with_a_pool_and_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for index in range(70):  # enough files for several pool tasks
        actor = (ALICE, BOB, CAROL)[index % 3]
        records = [
            NOISE,
            code_update(**actor, function=f"f{index % 5}", event_time=f"2026-11-30T{index % 24:02d}:00:00Z"),
        ]
        write(
            tmp_path / f"d{index % 4}" / f"{index:03d}.json.gz",
            gzip.compress(json.dumps({"Records": records}).encode()),
        )
    write(tmp_path / "d1" / "050.bad.json", b'{"Records": [{"eventName": "UpdateFunctionCode"')
    serial = hunt(capsys, "--jobs", "1", "--window", "6h", str(tmp_path))
    pooled = hunt(capsys, "--jobs", "2", "--window", "6h", str(tmp_path))
    assert serial == pooled
    status, rows, err = pooled
    assert status == 1
    assert sum(row["count"] for row in rows) == 70
    assert all(set(row) >= {"window_start", "window_end"} for row in rows)
    assert error_lines(err) == [
        f"codewatch hunt: error: {tmp_path}/d1/050.bad.json: not valid JSON (truncated: expecting ',' delimiter)"
    ]


def test_samples_folder(capsys: pytest.CaptureFixture[str]) -> None:
    status, rows, err = hunt(capsys, str(SAMPLES))
    assert [(row["user_type"], row["eventName"], row["count"]) for row in rows] == [
        ("IAMUser", "UpdateFunctionCode20150331v2", 1)
    ]
    # SOURCES.md and the Panther test-case file are not CloudTrail: named, and the rest still read.
    assert status == 1
    assert [line.split(": ")[2].rsplit("/", 1)[1] for line in error_lines(err)] == [
        "SOURCES.md",
        "panther_lambda_rule_test_cases.json",
    ]


def test_window_adds_bounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path / "a.jsonl",
        jsonl(code_update(event_time="2026-11-30T10:59:00Z"), code_update(event_time="2026-11-30T11:01:00Z")),
    )
    status, rows, _ = hunt(capsys, "--window", "60m", str(path))
    assert status == 0
    assert [(row["window_start"], row["window_end"], row["count"]) for row in rows] == [
        ("2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z", 1),
        ("2026-11-30T11:00:00Z", "2026-11-30T12:00:00Z", 1),
    ]


def test_principal_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path / "a.jsonl",
        jsonl(
            code_update(user_type="IAMUser"), code_update(user_type="AssumedRole"), code_update(user_type="AWSService")
        ),
    )
    assert sorted(row["user_type"] for row in hunt(capsys, str(path))[1]) == ["AssumedRole", "IAMUser"]
    assert [row["user_type"] for row in hunt(capsys, "--principal-types", "IAMUser", str(path))[1]] == ["IAMUser"]
    assert len(hunt(capsys, "--principal-types", "all", str(path))[1]) == 3


@pytest.mark.parametrize(
    ("option", "value"), [("--principal-types", "Robot"), ("--window", "soon"), ("--format", "xml")]
)
def test_usage_errors_exit_2(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["hunt", option, value, "x"])
    assert exited.value.code == 2
    assert option.lstrip("-") in capsys.readouterr().err


def allowlist_file(tmp_path: Path, *entries: dict[str, Any]) -> str:
    return str(write(tmp_path / "allow.json", json.dumps({"version": 1, "entries": list(entries)}).encode()))


def test_allowlist_suppresses_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = write(tmp_path / "a.jsonl", jsonl(code_update(**ALICE), code_update(**ALICE), code_update(**BOB)))
    allow = allowlist_file(
        tmp_path,
        {"id": "alice-ci", "reason": "her pipeline", "match": {"principal_arn": ["*:user/alice"]}},
        {"id": "old", "reason": "gone", "expires": "2020-01-01T00:00:00Z", "match": {"src_ip": ["198.51.100.0/24"]}},
    )
    status, rows, err = hunt(capsys, "--allowlist", allow, str(logs))
    assert status == 0
    assert [row["user_arn"] for row in rows] == [BOB["user_arn"]]
    assert "codewatch hunt: allowlist entry 'alice-ci' suppressed 2 event(s)" in err
    assert "codewatch hunt: allowlist entry 'old' expired 2020-01-01T00:00:00Z; ignored" in err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"version": 1, "entries": [{"id": "x", "match": {}}]}', "'reason' is required"),
        (b"{not json", "not valid JSON"),
        (None, "no such file or directory"),
    ],
)
def test_invalid_allowlist_exits_2_with_one_line(
    tmp_path: Path, content: bytes | None, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "allow.json"
    if content is not None:
        path.write_bytes(content)
    status = main(["hunt", "--allowlist", str(path), str(tmp_path)])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"codewatch hunt: error: invalid allowlist {path}: ")
    assert reason in err


def test_table_is_the_default_and_escapes_and_truncates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = "evil\x1b[2J\nforged line " + "x" * 300
    write(tmp_path / "a.jsonl", jsonl(code_update(user_agent=agent)))
    assert main(["hunt", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    header, row = out.splitlines()
    assert header.split() == [
        "COUNT", "FIRST", "LAST", "USER_TYPE", "USER_ARN", "SRC_IP", "USER_AGENT", "ACCOUNT", "EVENT", "FUNCTIONS",
    ]  # fmt: skip
    assert "\x1b" not in out
    assert "evil\\u001b[2J\\u000aforged line" in row
    cells = row.split("  ")
    assert any(len(value) == 60 and value.endswith("…") for value in cells)
    assert "1 file(s) read, 1 matching event(s) in 1 aggregate(s), 0 suppressed, 0 error(s)" in err


def test_table_shows_missing_fields_and_windows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.jsonl", jsonl(code_update(src_ip=None, user_agent=None)))
    assert main(["hunt", "--window", "1h", str(tmp_path)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.startswith("WINDOW_START")
    assert row.startswith("2026-11-30T10:00:00Z")
    assert " - " in row


def test_json_escapes_control_and_non_ascii(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.jsonl", jsonl(code_update(user_agent="a\u202eb\nc é")))
    status = main(["hunt", "--format", "json", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    assert out.isascii()
    assert "\\u202e" in out
    assert json.loads(out)["user_agent"] == "a\u202eb\nc é"


# ---------------------------------------------------------------------------------------------- bad input


def test_missing_path_is_named_and_the_rest_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path / "a.jsonl", jsonl(code_update()))
    status, rows, err = hunt(capsys, str(tmp_path / "nope"), str(good))
    assert status == 1
    assert len(rows) == 1
    assert error_lines(err) == [f"codewatch hunt: error: {tmp_path}/nope: no such file or directory"]


def test_permission_denied(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.json", b"{}")

    def denied(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    # Tests run as root, for whom chmod 000 does not deny: make open() refuse instead.
    monkeypatch.setattr(inputs, "open", denied, raising=False)
    status, _, err = hunt(capsys, "--jobs", "1", str(path))
    assert status == 1
    assert error_lines(err) == [f"codewatch hunt: error: {path}: permission denied"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"eventName": "UpdateFunctionCode", "userAgent": "\xff\xfe"}\n{"a": 1}\n', ":1: invalid UTF-8 at byte 50"),
        (
            b'{"eventName": "UpdateFunctionCode", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}\n{}\n",
            ":1: nested too deeply",
        ),
        (b"[1, 2]\n", ""),  # no marker: not parsed, and it looks like JSON
        (b"hello UpdateFunctionCode\n", ": not valid JSON (expecting value at line 1 column 1)"),
        (b"hello\n", ": not JSON (it does not start with '{' or '[')"),
        (b'{"Records": [{"eventName": "x"}, \n', ": not valid JSON (truncated: it does not end with '}' or ']')"),
        (
            b'{"Records": [7, {"eventName": "UpdateFunctionCode"}]}',
            " Records[0]: record is a number, expected an object",
        ),
        (b'{"Records": {"eventName": "UpdateFunctionCode"}}', ": 'Records' is dict, expected a list"),
    ],
)
def test_unreadable_content_is_reported_with_its_place(
    tmp_path: Path, content: bytes, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "in.json", content)
    status, rows, err = hunt(capsys, str(path))
    assert rows == []
    if not reason:
        assert (status, err) == (0, "")
        return
    assert status == 1
    assert error_lines(err)[0] == f"codewatch hunt: error: {path}{reason}"
    assert "Traceback" not in err


def test_malformed_matching_record_is_reported_with_its_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = code_update()
    bad["eventTime"] = "yesterday"
    path = write(tmp_path / "in.json", json.dumps({"Records": [code_update(), bad]}).encode())
    status, rows, err = hunt(capsys, str(path))
    assert (status, len(rows)) == (1, 1)
    assert error_lines(err) == [
        f"codewatch hunt: error: {path} Records[1]: eventTime is not an ISO-8601 time (ValueError)"
    ]


def test_lone_surrogates_fall_back_to_the_standard_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.dumps(code_update(user_agent="x")).replace('"userAgent": "x"', '"userAgent": "\\ud800"')
    status, rows, _ = hunt(capsys, str(write(tmp_path / "a.json", record.encode())))
    assert status == 0
    # Kept as the escape text the log holds (no UTF-8 text can hold the surrogate itself), as in the pipeline.
    assert rows[0]["user_agent"] == "\\ud800"


def test_escaped_marker_is_not_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.dumps(code_update()).replace("UpdateFunctionCode", "\\u0055pdateFunctionCode")
    assert b"UpdateFunctionCode" not in record.encode()
    status, rows, _ = hunt(capsys, str(write(tmp_path / "a.json", record.encode())))
    assert (status, len(rows)) == (0, 1)


def test_multi_member_gzip_and_empty_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.jsonl.gz", gzip.compress(jsonl(code_update())) + gzip.compress(jsonl(code_update())))
    write(tmp_path / "empty.json", b"")
    write(tmp_path / "empty.json.gz", gzip.compress(b""))
    status, rows, err = hunt(capsys, str(tmp_path))
    assert (status, [row["count"] for row in rows], err) == (0, [2], "")


def test_long_json_lines_files_stream_across_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "READ_SIZE", 64)  # every line spans several reads
    data = jsonl(*(code_update(event_time=f"2026-11-30T10:{minute:02d}:00Z") for minute in range(30)))
    write(tmp_path / "a.jsonl.gz", gzip.compress(data))
    write(tmp_path / "b.jsonl", data + b'{"eventName": "UpdateFunctionCode"')
    status, rows, err = hunt(capsys, "--jobs", "1", str(tmp_path))
    # The two files hold the same 30 events: each is counted once, by eventID, as the pipeline counts.
    assert (status, [row["count"] for row in rows]) == (1, [30])
    assert error_lines(err) == [
        f"codewatch hunt: error: {tmp_path}/b.jsonl:31: not valid JSON (truncated: expecting ',' delimiter)"
    ]


def test_oversized_documents_and_lines_are_refused_not_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "READ_SIZE", 256)
    monkeypatch.setattr(inputs, "MAX_DOCUMENT_BYTES", 4096)
    record = code_update()
    write(tmp_path / "bomb.json.gz", gzip.compress(b"0" * 100_000))  # one "line", far over the cap
    write(tmp_path / "big.json", json.dumps([record] * 10).encode())
    long_line = json.dumps({**record, "pad": "x" * 10_000}).encode()
    write(tmp_path / "lines.jsonl", jsonl(record) + long_line + b"\n" + jsonl({**record, "eventID": "second"}))
    status, rows, err = hunt(capsys, "--jobs", "1", str(tmp_path))
    assert status == 1
    assert [row["count"] for row in rows] == [2]  # the two short lines around the long one
    too_large = inputs.TOO_LARGE
    assert error_lines(err) == [
        f"codewatch hunt: error: {tmp_path}/{name}: {too_large}"
        for name in ("big.json", "bomb.json.gz", "lines.jsonl:2")
    ]


def test_too_many_errors_in_one_file_are_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "a.jsonl", b'{"eventName": "UpdateFunctionCode"\n' * 50)
    status, _, err = hunt(capsys, str(path))
    assert status == 1
    assert len(error_lines(err)) == 21
    assert error_lines(err)[-1].endswith("more errors in this file are not shown (over 20)")


# ---------------------------------------------------------------------------------------------- console script


def console_script() -> str:
    found = Path(sys.executable).with_name("codewatch")
    return str(found) if found.exists() else shutil.which("codewatch") or pytest.skip("codewatch is not installed")


def test_installed_console_script_and_broken_pipe(mixed: Path) -> None:
    command = [console_script(), "hunt", "--format", "json", str(mixed)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert len(done.stdout.splitlines()) == 4
    assert "Traceback" not in done.stderr
    # A reader that goes away (``| head -0``): no traceback, no complaint.
    process = subprocess.Popen(
        [*command[:-1], str(SAMPLES / "stratus_lambda_overwrite_code_detonation.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0
    assert err == ""
