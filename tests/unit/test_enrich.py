"""Enrichment: principal details, user-agent and source classes, code source, and the risk score."""

from __future__ import annotations

from typing import Any

import pytest

from codewatch.enrich import RISK_ADJUSTMENTS, SEED_RISK_SCORE, enrich, severity_label, source_class, user_agent_class
from codewatch.records import normalise
from tests.support.cloudtrail import code_update


def role_session(mfa: str | None = "true") -> dict[str, Any]:
    record = code_update(
        user_type="AssumedRole",
        user_arn="arn:aws:sts::123456789012:assumed-role/Deploy/gha",
        access_key="ASIAEXAMPLE0000001",
    )
    context: dict[str, Any] = {
        "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123456789012:role/Deploy", "userName": "Deploy"},
    }
    if mfa is not None:
        context["attributes"] = {"mfaAuthenticated": mfa, "creationDate": "2026-11-30T10:00:00Z"}
    record["userIdentity"]["sessionContext"] = context
    return record


# ---------------------------------------------------------------------------------------------- principal


@pytest.mark.parametrize(
    ("key", "kind"), [("AKIAEXAMPLE0000001", "long-term"), ("ASIAEXAMPLE0000001", "temporary"), ("ABIAEXAMPLE", None)]
)
def test_access_key_kind(key: str, kind: str | None) -> None:
    assert normalise(code_update(access_key=key)).principal.key_kind == kind


def test_no_access_key_no_kind() -> None:
    record = code_update()
    del record["userIdentity"]["accessKeyId"]
    principal = normalise(record).principal
    assert (principal.access_key_id, principal.key_kind) == (None, None)


@pytest.mark.parametrize(("flag", "expected"), [("true", True), ("false", False), (None, None)])
def test_mfa_from_session_attributes(flag: str | None, expected: bool | None) -> None:
    assert normalise(role_session(flag)).principal.mfa_authenticated is expected


def test_session_issuer() -> None:
    principal = normalise(role_session()).principal
    assert principal.session_issuer_arn == "arn:aws:iam::123456789012:role/Deploy"
    assert principal.session_issuer_type == "Role"
    assert principal.user_name is None or isinstance(principal.user_name, str)


def test_invoked_by() -> None:
    record = code_update()
    record["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
    assert normalise(record).principal.invoked_by == "cloudformation.amazonaws.com"


# ---------------------------------------------------------------------------------------------- user agent


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("console.amazonaws.com", "console"),
        ("signin.amazonaws.com", "console"),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0", "console"),
        ("aws-cli/2.13.5 Python/3.11.4 Linux/6.1 exe/x86_64", "aws-cli"),
        ("aws-cli/1.29.0 Python/3.9 Linux/5.10 botocore/1.31.0", "aws-cli"),
        ("Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 lang/python#3.12.4 Botocore/1.34.144", "sdk"),
        ("aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5", "sdk"),
        ("aws-sdk-java/2.25.60 Linux/5.10 OpenJDK_64-Bit_Server_VM/17", "sdk"),
        ("aws-sdk-js/3.600.0 ua/2.1 os/linux#6.1 lang/js md/nodejs#20.15", "sdk"),
        ("APN/1.0 HashiCorp/1.0 Terraform/1.9.3 terraform-provider-aws/5.60.0 aws-sdk-go-v2/1.30.3", "iac/terraform"),
        ("cloudformation.amazonaws.com", "iac/cloudformation"),
        ("aws-cdk/2.150.0 Boto3", "iac/cdk"),
        ("aws-sam-cli/1.120.0 Boto3/1.34.144", "iac/sam"),
        ("pulumi-aws/6.45.0 aws-sdk-go/1.50", "iac/pulumi"),
        ("serverless/3.38.0 aws-sdk-js/2.1500", "iac/serverless"),
        ("aws-cli/2.15.30 md/distrib#kali.2024 lang/python#3.11.8", "pentest/kali"),
        ("Boto3/1.34 Python/3.11 Linux/6.6.9-kali1-amd64 Botocore/1.34", "pentest/kali"),
        ("aws-cli/2.15 md/distrib#parrot.6", "pentest/parrot"),
        ("aws-cli/2.15 md/distrib#Pentoo", "pentest/pentoo"),
        ("APN/1.0 Terraform/1.9 Linux/6.6-kali", "pentest/kali"),
        ("Python-httplib2/0.8 (gzip)", "unknown"),
        ("stratus-red-team_a5b48423", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_user_agent_class(agent: str | None, expected: str) -> None:
    assert user_agent_class(agent) == expected


def test_a_word_containing_kali_is_not_kali() -> None:
    assert user_agent_class("aws-cli/2.15 md/app#kalimba") == "aws-cli"


# ---------------------------------------------------------------------------------------------- source


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("cloudformation.amazonaws.com", "aws-service"),
        ("AWS Internal", "aws-service"),
        ("203.0.113.50", "ipv4-public"),
        ("52.94.1.1", "ipv4-public"),
        ("10.1.2.3", "ipv4-private"),
        ("172.16.0.9", "ipv4-private"),
        ("192.168.1.1", "ipv4-private"),
        ("100.64.3.4", "ipv4-private"),
        ("127.0.0.1", "ipv4-private"),
        ("2001:db8::1", "ipv6"),
        ("not an address", "unparseable"),
        ("", "missing"),
        (None, "missing"),
    ],
)
def test_source_class(source: str | None, expected: str) -> None:
    assert source_class(source) == expected


# ---------------------------------------------------------------------------------------------- code


def test_code_from_s3_with_version() -> None:
    record = code_update()
    record["requestParameters"].update(s3Bucket="artifacts", s3Key="app/build.zip", s3ObjectVersion="v3")
    source = normalise(record).code_source
    assert (source.kind, source.s3_bucket, source.s3_key, source.s3_object_version) == (
        "s3",
        "artifacts",
        "app/build.zip",
        "v3",
    )
    assert source.describe() == "s3://artifacts/app/build.zip?versionId=v3"


def test_code_from_s3_without_version() -> None:
    record = code_update()
    record["requestParameters"].update(s3Bucket="artifacts", s3Key="app.zip")
    assert normalise(record).code_source.describe() == "s3://artifacts/app.zip"


def test_code_from_image() -> None:
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:abc"
    record = code_update()
    record["requestParameters"]["imageUri"] = uri
    source = normalise(record).code_source
    assert (source.kind, source.image_uri, source.describe()) == ("image", uri, f"image:{uri}")


def test_image_package_without_uri_is_still_an_image() -> None:
    record = code_update()
    record["responseElements"]["packageType"] = "Image"
    assert normalise(record).code_source.kind == "image"


def test_no_s3_or_image_means_an_inline_zip() -> None:
    source = normalise(code_update()).code_source
    assert (source.kind, source.describe()) == ("zip", "zip:inline")


def test_code_sha_and_published_version() -> None:
    event = normalise(code_update(code_sha256="Pt1c8vVaBygmNtAeSyjlpdy7r8nHRqJAAL++HEGlQkc="))
    assert event.code_sha256 == "Pt1c8vVaBygmNtAeSyjlpdy7r8nHRqJAAL++HEGlQkc="
    assert event.published_version == "7"


def test_latest_is_not_a_published_version() -> None:
    record = code_update()
    record["responseElements"]["version"] = "$LATEST"
    record["responseElements"]["codeSha256"] = ""
    event = normalise(record)
    assert (event.published_version, event.code_sha256) == (None, None)


# ---------------------------------------------------------------------------------------------- risk


def score_of(record: dict[str, Any]) -> tuple[int, tuple[str, ...]]:
    result = enrich(normalise(record))
    return result.risk_score, result.risk_reasons


def test_plain_temporary_credentials_keep_the_seed_score() -> None:
    assert score_of(role_session()) == (SEED_RISK_SCORE, ())


def test_long_term_key_adds() -> None:
    assert score_of(code_update()) == (SEED_RISK_SCORE + 5, ("long-term-key",))


def test_root_adds() -> None:
    record = code_update(user_type="Root", user_arn="arn:aws:iam::123456789012:root", access_key="ASIAEXAMPLE")
    assert score_of(record) == (SEED_RISK_SCORE + 20, ("root-principal",))


def test_pentest_agent_adds() -> None:
    record = role_session()
    record["userAgent"] = "aws-cli/2.15 md/distrib#kali.2024"
    assert score_of(record) == (SEED_RISK_SCORE + 25, ("pentest-user-agent",))


def test_console_without_mfa_adds() -> None:
    record = role_session(mfa="false")
    record["userAgent"] = "console.amazonaws.com"
    assert score_of(record) == (SEED_RISK_SCORE + 5, ("no-mfa-console",))


def test_cloudformation_on_behalf_lowers() -> None:
    record = role_session()
    record["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
    record["sourceIPAddress"] = record["userAgent"] = "cloudformation.amazonaws.com"
    assert score_of(record) == (SEED_RISK_SCORE - 15, ("via-cloudformation",))


def test_dry_run_lowers() -> None:
    record = role_session()
    record["requestParameters"]["dryRun"] = "true"
    assert score_of(record) == (SEED_RISK_SCORE - 10, ("dry-run",))


def test_score_is_capped_at_100() -> None:
    record = code_update(user_type="Root", user_arn="arn:aws:iam::123456789012:root", user_agent="kali")
    score, reasons = score_of(record)
    assert set(reasons) == {"root-principal", "pentest-user-agent", "long-term-key"}
    assert score == 100


def test_every_adjustment_has_a_reason_text() -> None:
    assert all(text for _, text in RISK_ADJUSTMENTS.values())


def test_enrichment_carries_the_classes() -> None:
    result = enrich(normalise(code_update(src_ip="10.0.0.1", user_agent="aws-cli/2.0")))
    assert (result.user_agent_class, result.source_class) == ("aws-cli", "ipv4-private")


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (0, "INFORMATIONAL"),
        (1, "LOW"),
        (39, "LOW"),
        (40, "MEDIUM"),
        (63, "MEDIUM"),
        (69, "MEDIUM"),
        (70, "HIGH"),
        (89, "HIGH"),
        (90, "CRITICAL"),
        (100, "CRITICAL"),
    ],
)
def test_severity_bands(score: int, label: str) -> None:
    assert severity_label(score) == label
