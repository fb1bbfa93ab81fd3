"""The built-in demo scenario: a story a security engineer recognises, plus the public samples.

- a CI role deploying many functions with Terraform: expected, suppressed by an allowlist entry;
- a developer's console change, with MFA;
- an attacker's burst with stolen long-term keys from a Kali box against several functions (the shape
  of Stratus Red Team's lambda-overwrite-code detonation: ARN as functionName, fullyQualifiedArn);
- the attacker's failed attempt on a function they may not touch (the rule ignores failures);
- a malformed event that matches the rule but cannot be read (it ends in the DLQ);
- every record in ../shared/samples and Panther's test logs, when that folder is beside the repo.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from codewatch.records import MalformedRecord, iter_records
from codewatch.timeutil import format_time

ACCOUNT = "123456789012"
REGION = "us-east-1"
BASE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"

CI_ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/DeployRole/gitlab-ci-8812"
ALLOWLIST = {
    "version": 1,
    "entries": [
        {
            "id": "ci-deploys",
            "reason": "Release pipeline: terraform apply from the GitLab runner pool",
            "expires": "2027-06-30T00:00:00Z",
            "match": {
                "principal_arn": [f"arn:aws:sts::{ACCOUNT}:assumed-role/DeployRole/*"],
                "src_ip": ["203.0.113.0/24"],
                "user_agent": ["*Terraform*"],
            },
        }
    ],
}


def _at(minutes: float) -> str:
    return format_time(BASE + timedelta(minutes=minutes))


def _record(
    sequence: int,
    minutes: float,
    identity: dict[str, Any],
    src_ip: str,
    user_agent: str,
    request: dict[str, Any],
    function: str,
    error: str | None = None,
) -> dict[str, Any]:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": _at(minutes),
        "eventSource": "lambda.amazonaws.com",
        "eventName": "UpdateFunctionCode20150331v2",
        "awsRegion": REGION,
        "sourceIPAddress": src_ip,
        "userAgent": user_agent,
        "requestParameters": request,
        "responseElements": {
            "functionName": function,
            "functionArn": f"{arn}:{3 + sequence % 5}",
            "codeSha256": f"demo{sequence:04d}Pt1c8vVaBygmNtAeSyjlpdy7r8nHRqJAAL=",
            "version": str(3 + sequence % 5),
            "packageType": "Zip",
        },
        "requestID": f"00000000-0000-4000-8000-{sequence:012d}",
        "eventID": f"demo-{sequence:05d}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = f"User is not authorized to perform: lambda:UpdateFunctionCode on resource: {arn}"
        record["responseElements"] = None
    return record


def story() -> list[Any]:
    records: list[Any] = []
    ci = {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEDEPLOY:gitlab-ci-8812",
        "arn": CI_ROLE_SESSION,
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLECIRUNNER1",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/DeployRole",
                "userName": "DeployRole",
            },
            "attributes": {"mfaAuthenticated": "false", "creationDate": _at(0)},
        },
    }
    terraform = (
        "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) "
        "terraform-provider-aws/5.70.0 aws-sdk-go-v2/1.32.2"
    )
    services = [
        "payments-api",
        "orders-api",
        "orders-webhook",
        "auth-authorizer",
        "customer-export",
        "search-indexer",
        "email-sender",
        "image-resizer",
        "billing-core",
        "audit-shipper",
        "feature-flags",
        "report-builder",
    ]
    for index, function in enumerate(services):
        request = {
            "functionName": function,
            "s3Bucket": "acme-release-artifacts",
            "s3Key": f"lambda/{function}/4f2c1e9.zip",
            "publish": True,
            "dryRun": False,
        }
        records.append(_record(len(records), 2 + index * 0.5, ci, "203.0.113.10", terraform, request, function))

    developer = {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLESSO:priya",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Developer_1a2b3c/priya",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLECONSOLE01",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "userName": "AWSReservedSSO_Developer_1a2b3c",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Developer_1a2b3c",
            },
            "attributes": {"mfaAuthenticated": "true", "creationDate": _at(10)},
        },
    }
    records.append(
        _record(
            len(records),
            14,
            developer,
            "198.51.100.23",
            "console.amazonaws.com",
            {"functionName": "orders-webhook", "publish": "false", "dryRun": "false"},
            "orders-webhook",
        )
    )

    attacker = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEBUILDBOT",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/build-bot",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAEXAMPLESTOLEN001",
        "userName": "build-bot",
    }
    kali = (
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64 exe/x86_64.kali.2024 "
        "prompt/off command/lambda.update-function-code"
    )
    targets = ["payments-api", "auth-authorizer", "customer-export"]
    for burst in range(9):
        function = targets[burst % 3]
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
        request = {
            "functionName": arn,
            "fullyQualifiedArn": {
                "arnPrefix": {"partition": "aws", "region": REGION, "account": ACCOUNT},
                "relativeId": {"functionName": function},
                "functionQualifier": {},
            },
            "publish": True,
            "dryRun": False,
        }
        records.append(_record(len(records), 31 + burst * 2.5, attacker, "185.220.101.45", kali, request, function))
    records.append(
        _record(
            len(records),
            55,
            attacker,
            "185.220.101.45",
            kali,
            {"functionName": "billing-core", "publish": True},
            "billing-core",
            error="AccessDeniedException",
        )
    )
    malformed = _record(
        len(records), 56, attacker, "185.220.101.45", kali, {"functionName": "payments-api"}, "payments-api"
    )
    malformed["eventTime"] = "yesterday, around tea time"
    records.append(malformed)
    return records


def public_samples() -> list[Any]:
    """Every record in the shared samples (Panther's file holds test cases: their logs are the records)."""
    records: list[Any] = []
    if not SAMPLES.is_dir():
        return records
    for path in sorted(SAMPLES.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and all(isinstance(v, dict) and "tests" in v for v in document.values()):
            records.extend(test["Log"] for rule in document.values() for test in rule["tests"])
            continue
        for item in document if isinstance(document, list) else [document]:
            try:
                records.extend(record for _, record in iter_records(item))
            except MalformedRecord:
                continue
    return records
