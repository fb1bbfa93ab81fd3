"""Factories for CloudTrail records and the envelopes and batches that carry them, for handler and e2e tests."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT.parent / "shared" / "samples"
ACCOUNT = "123456789012"
REGION = "us-east-1"

#: Actors whose events land in different aggregation keys: developers, an attacker on Kali, a CI role
#: with neither source IP nor user agent logged, another account's admin, and the root user.
ACTORS: tuple[dict[str, Any], ...] = (
    {"user_arn": "arn:aws:iam::123456789012:user/alice", "src_ip": "198.51.100.7"},
    {"user_arn": "arn:aws:iam::123456789012:user/bob", "src_ip": "198.51.100.8", "user_agent": "Boto3/1.34.1"},
    {
        "user_arn": "arn:aws:iam::123456789012:user/mallory",
        "src_ip": "203.0.113.66",
        "user_agent": "aws-cli/2.15 Python/3.11 Linux/6.6.9-amd64 kali",
    },
    {
        "user_arn": "arn:aws:sts::123456789012:assumed-role/Deploy/ci",
        "user_type": "AssumedRole",
        "access_key": "ASIAEXAMPLE",
        "src_ip": None,
        "user_agent": None,
    },
    {
        "user_arn": "arn:aws:sts::444455556666:assumed-role/Admin/eve",
        "user_type": "AssumedRole",
        "access_key": "ASIAEXAMPLE2",
        "account": "444455556666",
        "src_ip": "192.0.2.10",
    },
    {"user_arn": "arn:aws:iam::123456789012:root", "user_type": "Root", "src_ip": "192.0.2.99"},
)


def code_update(
    *,
    event_id: str | None = None,
    event_time: str = "2026-11-30T10:15:00Z",
    function: str = "payments-api",
    user_type: str = "IAMUser",
    user_arn: str = f"arn:aws:iam::{ACCOUNT}:user/dev",
    access_key: str = "AKIAEXAMPLEKEY000001",
    src_ip: str | None = "198.51.100.7",
    user_agent: str | None = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1",
    event_name: str = "UpdateFunctionCode20150331v2",
    account: str = ACCOUNT,
    error_code: str | None = None,
    code_sha256: str = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28=",
) -> dict[str, Any]:
    """A successful ``UpdateFunctionCode`` record shaped like the Stratus detonation sample."""
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": user_type,
            "principalId": "AIDAEXAMPLE",
            "arn": user_arn,
            "accountId": account,
            "accessKeyId": access_key,
            "userName": user_arn.rsplit("/", 1)[-1],
        },
        "eventTime": event_time,
        "eventSource": "lambda.amazonaws.com",
        "eventName": event_name,
        "awsRegion": REGION,
        "sourceIPAddress": src_ip,
        "userAgent": user_agent,
        "requestParameters": {"functionName": function, "publish": True, "dryRun": False},
        "responseElements": {
            "functionName": function,
            "functionArn": f"arn:aws:lambda:{REGION}:{account}:function:{function}:7",
            "codeSha256": code_sha256,
            "version": "7",
        },
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
    }
    for field, value in (("sourceIPAddress", src_ip), ("userAgent", user_agent)):
        if value is None:
            del record[field]
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = "denied"
        record["responseElements"] = None
    return record


def envelope(record: dict[str, Any], detail_type: str = "AWS API Call via CloudTrail") -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.lambda",
        "account": record.get("recipientAccountId", ACCOUNT),
        "time": record.get("eventTime", "2026-11-30T10:15:00Z"),
        "region": record.get("awsRegion", REGION),
        "resources": [],
        "detail": copy.deepcopy(record),
    }


def sqs_event(bodies: Iterable[str]) -> dict[str, Any]:
    """An SQS event as Lambda's event-source mapping delivers it."""
    return {
        "Records": [
            {
                "messageId": f"msg-{index}-{uuid.uuid4()}",
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764497700000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:codewatch-events",
                "awsRegion": REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


def sqs_event_of_records(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return sqs_event(json.dumps(envelope(record)) for record in records)


class FakeLambdaContext:
    function_name = "codewatch-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:codewatch-test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/codewatch-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
