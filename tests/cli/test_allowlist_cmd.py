"""``codewatch allowlist`` on moto: round trips, refusals that write nothing, races, size limits, errors.

In-process ``mock_aws`` for speed; one test runs the installed console script against moto server to
prove the shared AWS options (``--endpoint-url``, ``--region``) end to end.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from codewatch.allowlist import parse_allowlist
from codewatch_cli import allowlist_cmd
from codewatch_cli.main import main

PARAMETER = "/codewatch/allowlist"
CODEWATCH = Path(sys.executable).with_name("codewatch")
CI_ENTRY = {
    "id": "ci-deploys",
    "reason": "release pipeline",
    "expires": "2099-01-31T00:00:00Z",
    "match": {"principal_arn": ["arn:aws:sts::*:assumed-role/Deploy*/*"], "src_ip": ["203.0.113.0/24"]},
}
DOCUMENT = {"version": 1, "entries": [CI_ENTRY]}


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def cw(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def write_json(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document, indent=2))
    return str(path)


def stored(ssm: Any) -> tuple[dict[str, Any], int]:
    parameter = ssm.get_parameter(Name=PARAMETER)["Parameter"]
    return json.loads(parameter["Value"]), int(parameter["Version"])


def ids(ssm: Any) -> list[str]:
    return [entry["id"] for entry in stored(ssm)[0]["entries"]]


def add_argv(entry_id: str, *extra: str) -> list[str]:
    return ["allowlist", "add", "--id", entry_id, "--reason", f"{entry_id} is expected", *extra]


def test_set_show_round_trip_writes_minified_stable_json(
    ssm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Keys in an unusual order: the stored form has the schema's order, minified.
    shuffled = {"entries": [{"match": CI_ENTRY["match"], **{k: v for k, v in CI_ENTRY.items() if k != "match"}}]}
    shuffled["version"] = 1
    status, out, _ = cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", shuffled))
    assert status == 0
    assert "version 1" in out
    value = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    assert value == json.dumps(DOCUMENT, separators=(",", ":"))
    assert ssm.describe_parameters()["Parameters"][0]["Tier"] == "Standard"

    status, out, err = cw(capsys, "allowlist", "show")
    assert status == 0
    assert json.loads(out) == DOCUMENT  # stdout is the document alone: ``show > file`` then ``set file``
    assert "1 entry, 0 expired" in err
    assert "ci-deploys: expires 2099-01-31T00:00:00Z" in err

    # Setting the same document again adds no version to the 100 SSM keeps.
    status, out, _ = cw(capsys, "allowlist", "set", write_json(tmp_path / "b.json", DOCUMENT))
    assert status == 0
    assert "nothing written" in out
    assert stored(ssm)[1] == 1


def test_add_remove_and_history(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # ``add`` creates the parameter when missing.
    assert cw(capsys, *add_argv("one", "--src-ip", "198.51.100.0/24", "--expires", "30d"))[0] == 0
    assert cw(capsys, *add_argv("two", "--function", "payments-*", "build-*", "--account", "111122223333"))[0] == 0
    document, version = stored(ssm)
    assert version == 2
    assert document["entries"][1]["match"] == {"function": ["payments-*", "build-*"], "account": ["111122223333"]}
    assert document["entries"][0]["expires"].endswith("Z")  # 30d became an absolute time
    parse_allowlist(json.dumps(document))

    status, out, _ = cw(capsys, "allowlist", "remove", "one")
    assert status == 0
    assert "1 entry left" in out
    assert ids(ssm) == ["two"]

    status, out, err = cw(capsys, "allowlist", "history")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["VERSION", "MODIFIED", "ENTRIES", "BYTES"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3"]
    assert [line.split()[2] for line in lines[1:]] == ["1", "2", "1"]
    assert "SSM keeps the last 100" in err


def test_validate_is_local_and_lists_every_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No mock_aws here: validate must not call AWS.
    status, out, _ = cw(capsys, "allowlist", "validate", write_json(tmp_path / "ok.json", DOCUMENT))
    assert status == 0
    assert "valid" in out
    bad = {"version": 1, "entries": [{"id": "x", "match": {}}, {"id": "y", "reason": "r", "match": {"colour": ["a"]}}]}
    status, _, err = cw(capsys, "allowlist", "validate", write_json(tmp_path / "bad.json", bad))
    assert status == 1
    assert "'reason' is required" in err
    assert "'match' must be a non-empty object" in err
    assert "unknown match field 'colour'" in err
    assert len(err.strip().splitlines()) == 1


def test_invalid_writes_are_refused_and_nothing_is_written(
    ssm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", DOCUMENT))[0] == 0
    bad = {"version": 1, "entries": [{**CI_ENTRY, "match": {"src_ip": ["10.0.0.0/33"]}}]}
    refusals = [
        ("set", write_json(tmp_path / "bad.json", bad)),
        ("set", write_json(tmp_path / "notjson.json", "{")),
        *[("add", *add_argv("wide")[2:])],  # no match field: would suppress everything
        ("add", *add_argv("late", "--src-ip", "10.0.0.1", "--expires", "next tuesday")[2:]),
        ("add", *add_argv("ci-deploys", "--src-ip", "10.0.0.1")[2:]),  # duplicate id without --replace
        ("remove", "no-such-entry"),
    ]
    for argv in refusals:
        status, out, err = cw(capsys, "allowlist", *argv)
        assert (status, out) == (2, ""), argv
        assert err.count("\n") == 1, (argv, err)  # one line, no traceback
        assert err.startswith("codewatch allowlist: error: ")
    assert stored(ssm) == (DOCUMENT, 1)

    # --replace renews an entry in place.
    assert cw(capsys, *add_argv("ci-deploys", "--src-ip", "10.0.0.1", "--replace"))[0] == 0
    assert stored(ssm)[0]["entries"][0]["match"] == {"src_ip": ["10.0.0.1"]}


def test_stored_invalid_document_is_shown_as_invalid_and_not_edited(
    ssm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ssm.put_parameter(Name=PARAMETER, Value='{"version": 1, "entries": [{"id": "x"}]}', Type="String")
    status, out, err = cw(capsys, "allowlist", "show")
    assert status == 1
    assert json.loads(out) == {"version": 1, "entries": [{"id": "x"}]}  # shown, to fix it
    assert "INVALID" in err
    assert "fails open" in err
    status, _, err = cw(capsys, *add_argv("y", "--src-ip", "10.0.0.1"))
    assert status == 2
    assert "allowlist set FILE" in err
    assert stored(ssm)[1] == 1


def test_show_flags_expired_entries(ssm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expired = {**CI_ENTRY, "id": "old", "expires": "2020-01-01T00:00:00Z"}
    assert cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", {"version": 1, "entries": [expired]}))[0] == 0
    status, _, err = cw(capsys, "allowlist", "show")
    assert status == 0
    assert "1 expired" in err
    assert "old: EXPIRED 2020-01-01T00:00:00Z" in err
    assert "codewatch allowlist remove old" in err


def _race(monkeypatch: pytest.MonkeyPatch, second_writer: list[str]) -> None:
    """Make the next command's first ``PutParameter`` wait while ``second_writer`` runs to completion.

    Deterministic stand-in for two operators writing at the same moment: both read the same version,
    the second one's write lands first.
    """
    real_client = allowlist_cmd.client
    fired: list[bool] = []

    def racing_client(args: Any, service: str) -> Any:
        ssm_client = real_client(args, service)
        if not fired:

            def interleave(**_: Any) -> None:
                if not fired:
                    fired.append(True)  # before main(): the second writer's own client gets no hook
                    assert main(second_writer) == 0

            ssm_client.meta.events.register("before-call.ssm.PutParameter", interleave)
        return ssm_client

    monkeypatch.setattr(allowlist_cmd, "client", racing_client)


def test_concurrent_adds_are_both_kept(
    ssm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", DOCUMENT))[0] == 0
    _race(monkeypatch, add_argv("second", "--src-ip", "192.0.2.2"))
    status, _, err = cw(capsys, *add_argv("first", "--src-ip", "192.0.2.1"))
    assert status == 0
    assert "another writer" in err
    assert sorted(ids(ssm)) == ["ci-deploys", "first", "second"]
    # v2 second's add, v3 first's (which lost second's entry), v4 the merge restoring it.
    assert stored(ssm)[1] == 4


def test_concurrent_remove_and_add_are_both_kept(
    ssm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", DOCUMENT))[0] == 0
    _race(monkeypatch, ["allowlist", "remove", "ci-deploys"])
    assert cw(capsys, *add_argv("first", "--src-ip", "192.0.2.1"))[0] == 0
    assert ids(ssm) == ["first"]  # the concurrent removal was not undone by our overwrite


def test_concurrent_add_of_the_same_id_keeps_theirs_and_refuses(
    ssm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", DOCUMENT))[0] == 0
    _race(monkeypatch, add_argv("same", "--src-ip", "192.0.2.2"))
    status, _, err = cw(capsys, *add_argv("same", "--src-ip", "192.0.2.1"))
    assert status == 2
    assert "added concurrently" in err
    document, version = stored(ssm)
    assert version == 4  # ours (v3) overwrote theirs (v2); v4 puts theirs back
    assert document["entries"][1]["match"] == {"src_ip": ["192.0.2.2"]}


def test_set_refuses_a_concurrent_change_unless_forced(
    ssm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", DOCUMENT))[0] == 0
    mine = write_json(tmp_path / "mine.json", {"version": 1, "entries": [{**CI_ENTRY, "id": "mine"}]})
    _race(monkeypatch, add_argv("theirs", "--src-ip", "192.0.2.9"))
    status, _, err = cw(capsys, "allowlist", "set", mine)
    assert status == 2
    assert "--force" in err
    assert ids(ssm) == ["ci-deploys", "theirs"]  # their change stands; ours was not kept

    _race(monkeypatch, add_argv("theirs-again", "--src-ip", "192.0.2.9"))
    status, _, err = cw(capsys, "allowlist", "set", mine, "--force")
    assert status == 0
    assert "overwrote a concurrent change" in err
    assert ids(ssm) == ["mine"]

    # --if-version: the operator's own view must still be current.
    status, _, err = cw(capsys, "allowlist", "set", write_json(tmp_path / "x.json", DOCUMENT), "--if-version", "1")
    assert status == 2
    assert "nothing was written" in err
    assert ids(ssm) == ["mine"]


def test_size_warning_refusal_and_advanced_tier(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cw(capsys, *add_argv("big", "--src-ip", "10.0.0.1", "--reason", "x" * 3500))
    assert status == 0
    assert "warning" in err
    assert "--tier Advanced" in err
    status, _, err = cw(capsys, *add_argv("bigger", "--src-ip", "10.0.0.2", "--reason", "y" * 700))
    assert status == 2
    assert "over the standard tier's 4,096" in err
    assert "--tier Advanced" in err
    assert stored(ssm)[1] == 1

    status, _, _ = cw(capsys, *add_argv("bigger", "--src-ip", "10.0.0.2", "--reason", "y" * 700, "--tier", "Advanced"))
    assert status == 0
    assert ssm.describe_parameters()["Parameters"][0]["Tier"] == "Advanced"
    # Later writes keep the advanced tier without being told.
    assert cw(capsys, "allowlist", "remove", "big")[0] == 0
    assert ssm.describe_parameters()["Parameters"][0]["Tier"] == "Advanced"


def test_missing_parameter_is_one_line_exit_2(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["show"], ["remove", "x"], ["history"], ["show", "--parameter", "/other/name"]):
        status, out, err = cw(capsys, "allowlist", *argv)
        assert status == 2, argv
        assert out == ""
        assert err.count("\n") == 1
        assert "not found" in err


def test_no_credentials_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    status, out, err = cw(capsys, "allowlist", "show")
    assert (status, out) == (2, "")
    assert err == err.strip() + "\n"
    assert "no usable AWS credentials" in err

    status, _, err = cw(capsys, "allowlist", "show", "--profile", "nobody")
    assert status == 2
    assert "nobody" in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_endpoint_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    status, _, err = cw(capsys, "findings", "--endpoint-url", f"http://127.0.0.1:{free_port()}")
    assert status == 2
    assert err.count("\n") == 1
    assert "cannot reach the AWS endpoint" in err
    status, _, err = cw(capsys, "allowlist", "history", "--endpoint-url", "not a url")
    assert status == 2
    assert "invalid --endpoint-url" in err


def test_console_script_on_moto_server(tmp_path: Path) -> None:
    """The installed ``codewatch`` against moto server, configured by options only (no AWS_* but the keys)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        env = {
            "PATH": "/usr/bin:/bin",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        aws = ["--region", "eu-west-1", "--endpoint-url", endpoint]

        def codewatch(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(CODEWATCH), *argv], env=env, capture_output=True, text=True, timeout=60, check=False
            )

        result = codewatch("allowlist", "set", write_json(tmp_path / "a.json", DOCUMENT), *aws)
        assert result.returncode == 0, result.stderr
        result = codewatch(*add_argv("second", "--src-ip", "192.0.2.1"), *aws)
        assert result.returncode == 0, result.stderr
        result = codewatch("allowlist", "show", *aws)
        assert result.returncode == 0, result.stderr
        assert [entry["id"] for entry in json.loads(result.stdout)["entries"]] == ["ci-deploys", "second"]
        # It really is on the server, in the region asked for.
        server_ssm = boto3.client("ssm", region_name="eu-west-1", endpoint_url=endpoint)
        assert server_ssm.get_parameter(Name=PARAMETER)["Parameter"]["Version"] == 2

        result = codewatch("findings", "--format", "json", *aws)
        assert (result.returncode, result.stdout) == (0, ""), result.stderr
        # Without a region anywhere: one line, exit 2.
        result = codewatch("allowlist", "show", "--endpoint-url", endpoint)
        assert result.returncode == 2
        assert result.stderr.startswith("codewatch allowlist: error: no AWS region")
        assert "Traceback" not in result.stderr
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("AccessDeniedException", "User: arn:aws:iam::1:user/x is not authorized\nto perform", "access denied for"),
        ("ExpiredTokenException", "The security token included in the request is expired", "have expired"),
        ("UnrecognizedClientException", "The security token is invalid", "rejected the credentials"),
        ("ThrottlingException", "Rate exceeded", "GetParameter failed: ThrottlingException: Rate exceeded"),
    ],
)
def test_aws_errors_are_one_line_exit_2(
    code: str, message: str, expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.stub import Stubber

    real_client = allowlist_cmd.client

    def stubbed(args: Any, service: str) -> Any:
        ssm_client = real_client(args, service)
        stubber = Stubber(ssm_client)
        stubber.add_client_error("get_parameter", service_error_code=code, service_message=message)
        stubber.activate()
        return ssm_client

    monkeypatch.setattr(allowlist_cmd, "client", stubbed)
    status, out, err = cw(capsys, "allowlist", "show")
    assert (status, out) == (2, "")
    assert err.count("\n") == 1  # the server's newline does not split the line
    assert expected in err


def test_set_racing_a_creator_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        ssm_client = boto3.client("ssm", region_name="us-east-1")
        _race(monkeypatch, add_argv("theirs", "--src-ip", "192.0.2.9"))
        status, _, err = cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", DOCUMENT))
        assert status == 2
        assert "someone else created" in err
        assert ids(ssm_client) == ["theirs"]


def test_endless_concurrent_writers_make_add_give_up(
    ssm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cw(capsys, "allowlist", "set", write_json(tmp_path / "a.json", DOCUMENT))[0] == 0
    real_client = allowlist_cmd.client
    writes: list[int] = []

    def contended_client(args: Any, service: str) -> Any:
        ssm_client = real_client(args, service)

        def interleave(**_: Any) -> None:
            # Another writer lands before every one of ours (a raw write: no hook of its own).
            writes.append(1)
            ssm.put_parameter(
                Name=PARAMETER,
                Value=json.dumps({"version": 1, "entries": [{**CI_ENTRY, "id": f"other-{len(writes)}"}]}),
                Overwrite=True,
            )

        ssm_client.meta.events.register("before-call.ssm.PutParameter", interleave)
        return ssm_client

    monkeypatch.setattr(allowlist_cmd, "client", contended_client)
    status, _, err = cw(capsys, *add_argv("mine", "--src-ip", "192.0.2.1"))
    assert status == 2
    assert len(writes) == allowlist_cmd.MAX_ATTEMPTS
    assert err.splitlines()[-1].startswith("codewatch allowlist: error: ")
    assert "gave up after 5 writes" in err
