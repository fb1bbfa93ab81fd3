"""Generate the benchmark corpus: gzip CloudTrail log files laid out as CloudTrail delivers them to S3.

``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<id>.json.gz``,
each file one ``{"Records": [...]}`` document of 50-200 records of about 1-1.5 KB, with the event mix of a
busy account: STS, EC2, S3, KMS, CloudWatch Logs, IAM, SSM, DynamoDB and Lambda reads and writes.
``UpdateFunctionCode`` calls are rare (well under 1% of records) and clustered as real ones are: CI
deploy bursts from a few roles, the odd developer, failed calls, a service principal, and an attacker.

The output is a pure function of the parameters (seeded per file, gzip mtime 0), so two runs give the
same bytes; a stamp file records the parameters, and ``ensure_corpus`` reuses a corpus that matches.

Usage: ``python scripts/gen_corpus.py [--records N] [--out DIR]``.
"""

from __future__ import annotations

# ruff: noqa: S311 - seeded pseudo-random numbers are the point: the corpus must be reproducible, not secret
import argparse
import gzip
import json
import os
import random
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

GENERATOR_VERSION = 1
DEFAULT_RECORDS = 1_000_000
DEFAULT_SEED = 20261204
ACCOUNTS = ("111122223333", "444455556666", "777788889999", "123456789012")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
START = datetime(2026, 9, 1, tzinfo=UTC)
FILE_MINUTES = 5  # CloudTrail delivers about every 5 minutes per account and region
DEPLOY_FILE_SHARE = 0.04  # share of files that fall in a CI deploy burst
STAMP = "STAMP.json"

_USER_AGENTS = (
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9 exec-env/CloudShell",
    "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#5.10.219 md/arch#x86_64 lang/python#3.12.4 "
    "cfg/retry-mode#legacy Botocore/1.34.144",
    "aws-sdk-java/2.25.60 Linux/5.10.219 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS Java/17.0.11 vendor/Amazon.com_Inc. "
    "exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.171.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
)
_DEPLOY_AGENTS = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.9.3 (+https://www.terraform.io) terraform-provider-aws/5.60.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.3 ua/2.1 os/linux lang/go#1.22.5 "
    "md/GOOS#linux md/GOARCH#amd64 api/lambda#1.56.3",
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9 "
    "md/command#lambda.update-function-code",
    "aws-sam-cli/1.120.0 Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.11.9",
)
_KALI_AGENT = (
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.6.9-amd64 md/arch#x86_64 "
    "lang/python#3.11.8 md/distrib#kali.2024"
)


def _uuid(rng: random.Random) -> str:
    text = f"{rng.getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-a{text[17:20]}-{text[20:]}"


def _ip(rng: random.Random) -> str:
    return (
        f"{rng.choice((3, 18, 34, 52, 54, 198, 203))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    )


def _role_identity(rng: random.Random, account: str, role: str, session: str, mfa: bool = False) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROA{rng.getrandbits(64):016X}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": f"AROA{rng.getrandbits(64):016X}",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": "2026-09-01T00:00:00Z", "mfaAuthenticated": "true" if mfa else "false"},
        },
    }


def _user_identity(rng: random.Random, account: str, user: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{rng.getrandbits(64):016X}",
        "arn": f"arn:aws:iam::{account}:user/{user}",
        "accountId": account,
        "accessKeyId": f"AKIA{rng.getrandbits(64):016X}",
        "userName": user,
    }


def _service_identity(service: str) -> dict[str, Any]:
    return {"type": "AWSService", "invokedBy": service}


def _base(rng: random.Random, account: str, region: str, when: datetime, source: str, name: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": _ip(rng),
        "userAgent": rng.choice(_USER_AGENTS),
        "requestParameters": None,
        "responseElements": None,
        "requestID": _uuid(rng),
        "eventID": _uuid(rng),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com",
        },
    }


def _background(rng: random.Random, account: str, region: str, when: datetime) -> dict[str, Any]:
    """One ordinary record, chosen by the weights of a busy account's management events."""
    kind = rng.choices(
        ("assume", "ec2", "s3", "kms", "logs", "iam", "ssm", "dynamodb", "lambda-read", "lambda-config", "sts-id"),
        weights=(22, 14, 10, 16, 8, 5, 8, 6, 6, 1, 4),
    )[0]
    function = f"svc-{rng.randrange(40):02d}-handler"
    role = rng.choice(("AppRole", "ReadOnly", "DataPipeline", "Ops"))
    session = f"i-{rng.getrandbits(60):015x}"
    if kind == "assume":
        record = _base(rng, account, region, when, "sts.amazonaws.com", "AssumeRole")
        service = rng.choice(("lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com"))
        record.update(
            userIdentity=_service_identity(service),
            sourceIPAddress=service,
            userAgent=service,
            requestParameters={
                "roleArn": f"arn:aws:iam::{account}:role/{role}",
                "roleSessionName": session,
                "durationSeconds": 3600,
            },
            responseElements={
                "credentials": {
                    "accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
                    "sessionToken": f"IQoJb3JpZ2luX2VjE{rng.getrandbits(256):064x}{rng.getrandbits(256):064x}",
                    "expiration": "Sep 1, 2026, 1:00:00 PM",
                },
                "assumedRoleUser": {
                    "assumedRoleId": f"AROA{rng.getrandbits(64):016X}:{session}",
                    "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
                },
            },
            readOnly=True,
            resources=[{"accountId": account, "type": "AWS::IAM::Role", "ARN": f"arn:aws:iam::{account}:role/{role}"}],
            sharedEventID=_uuid(rng),
        )
        return record
    if kind == "kms":
        record = _base(rng, account, region, when, "kms.amazonaws.com", "Decrypt")
        record.update(
            userIdentity=_role_identity(rng, account, role, session),
            sourceIPAddress="AWS Internal",
            requestParameters={
                "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "encryptionContext": {
                    "aws:lambda:FunctionArn": f"arn:aws:lambda:{region}:{account}:function:{function}"
                },
            },
            resources=[
                {
                    "accountId": account,
                    "type": "AWS::KMS::Key",
                    "ARN": f"arn:aws:kms:{region}:{account}:key/{_uuid(rng)}",
                }
            ],
        )
        return record
    names = {
        "ec2": ("ec2.amazonaws.com", rng.choice(("DescribeInstances", "DescribeSecurityGroups", "DescribeVolumes"))),
        "s3": ("s3.amazonaws.com", rng.choice(("GetBucketAcl", "ListBuckets", "GetBucketPolicy", "GetBucketLocation"))),
        "logs": ("logs.amazonaws.com", rng.choice(("CreateLogStream", "DescribeLogGroups"))),
        "iam": ("iam.amazonaws.com", rng.choice(("GetRole", "ListAttachedRolePolicies", "GetPolicyVersion"))),
        "ssm": ("ssm.amazonaws.com", rng.choice(("GetParameter", "GetParameters", "DescribeInstanceInformation"))),
        "dynamodb": ("dynamodb.amazonaws.com", rng.choice(("DescribeTable", "ListTables", "DescribeTimeToLive"))),
        "lambda-read": ("lambda.amazonaws.com", rng.choice(("GetFunction20150331v2", "ListFunctions20150331"))),
        "lambda-config": ("lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2"),
        "sts-id": ("sts.amazonaws.com", "GetCallerIdentity"),
    }
    source, name = names[kind]
    record = _base(rng, account, region, when, source, name)
    record["userIdentity"] = _role_identity(rng, account, role, session, mfa=rng.random() < 0.1)
    parameters: dict[str, Any] = {
        "ec2": {"instancesSet": {"items": [{"instanceId": session}]}, "filterSet": {}, "maxResults": 1000},
        "s3": {"bucketName": f"data-{account}-{rng.randrange(30)}", "Host": f"s3.{region}.amazonaws.com"},
        "logs": {"logGroupName": f"/aws/lambda/{function}", "logStreamName": f"2026/09/01/[$LATEST]{_uuid(rng)}"},
        "iam": {"roleName": role},
        "ssm": {"name": f"/app/{function}/config", "withDecryption": True},
        "dynamodb": {"tableName": f"table-{rng.randrange(12)}"},
        "lambda-read": {"functionName": function},
        "lambda-config": {"functionName": function, "timeout": 30, "memorySize": 512},
        "sts-id": None,
    }[kind]
    record["requestParameters"] = parameters
    if kind == "lambda-config":
        record["readOnly"] = False
        record["responseElements"] = {
            "functionName": function,
            "functionArn": f"arn:aws:lambda:{region}:{account}:function:{function}",
            "runtime": "python3.12",
            "codeSha256": f"{rng.getrandbits(256):064x}",
            "lastUpdateStatus": "InProgress",
        }
    return record


def _code_update(rng: random.Random, account: str, region: str, when: datetime, actor: str) -> dict[str, Any]:
    """An ``UpdateFunctionCode`` call by one of the corpus's actors."""
    function = f"svc-{rng.randrange(40):02d}-handler"
    name = rng.choice(("UpdateFunctionCode20150331v2", "UpdateFunctionCode20150331v2", "UpdateFunctionCode20150331"))
    record = _base(rng, account, region, when, "lambda.amazonaws.com", name)
    record["readOnly"] = False
    if actor == "ci":
        record["userIdentity"] = _role_identity(rng, account, "DeployRole", f"gha-{rng.randrange(4)}")
        record["sourceIPAddress"] = f"203.0.113.{10 + rng.randrange(3)}"
        record["userAgent"] = rng.choice(_DEPLOY_AGENTS)
    elif actor == "developer":
        user = rng.choice(("alice", "bob"))
        record["userIdentity"] = _user_identity(rng, account, user)
        record["sourceIPAddress"] = f"198.51.100.{20 + ('alice', 'bob').index(user)}"
        record["userAgent"] = _USER_AGENTS[0]
    elif actor == "attacker":
        record["userIdentity"] = _user_identity(rng, account, "svc-backup")
        record["sourceIPAddress"] = "192.0.2.66"
        record["userAgent"] = _KALI_AGENT
    elif actor == "service":
        record["userIdentity"] = _service_identity("cloudformation.amazonaws.com")
        record["sourceIPAddress"] = record["userAgent"] = "cloudformation.amazonaws.com"
    else:  # "denied": a failed attempt; CloudTrail logs the error and no response
        record["userIdentity"] = _role_identity(rng, account, "ReadOnly", "probe")
        record["sourceIPAddress"] = "192.0.2.77"
        record["errorCode"] = "AccessDeniedException"
        record["errorMessage"] = "User is not authorized to perform: lambda:UpdateFunctionCode"
    record["requestParameters"] = {
        "functionName": function,
        "s3Bucket": f"deploy-artifacts-{account}",
        "s3Key": f"{function}/{rng.getrandbits(64):016x}.zip",
        "publish": rng.random() < 0.5,
        "dryRun": False,
    }
    if "errorCode" not in record:
        record["responseElements"] = {
            "functionName": function,
            "functionArn": f"arn:aws:lambda:{region}:{account}:function:{function}",
            "runtime": "python3.12",
            "codeSize": rng.randrange(10_000, 9_000_000),
            "codeSha256": f"{rng.getrandbits(256):064x}",
            "version": "$LATEST",
            "lastUpdateStatus": "InProgress",
            "packageType": "Zip",
        }
    return record


def _file_records(seed: int, index: int, count: int, account: str, region: str, when: datetime) -> list[dict[str, Any]]:
    rng = random.Random(seed * 1_000_003 + index)
    deploy = rng.random() < DEPLOY_FILE_SHARE
    records = []
    for _ in range(count):
        moment = when + timedelta(seconds=rng.randrange(FILE_MINUTES * 60))
        roll = rng.random()
        if deploy and roll < 0.06:
            records.append(_code_update(rng, account, region, moment, "ci"))
        elif roll < 0.0004:
            actor = rng.choices(("developer", "attacker", "service", "denied"), weights=(6, 1, 2, 2))[0]
            records.append(_code_update(rng, account, region, moment, actor))
        else:
            records.append(_background(rng, account, region, moment))
    records.sort(key=lambda record: record["eventTime"])
    return records


def _plan(records: int, seed: int) -> list[tuple[int, int, str, str, datetime]]:
    """Which files to write: (index, record count, account, region, delivery time).

    Files go round-robin over account and region, each 50-200 records, until ``records`` are planned.
    """
    rng = random.Random(seed)
    streams = [(account, region) for account in ACCOUNTS for region in REGIONS]
    plan: list[tuple[int, int, str, str, datetime]] = []
    planned = 0
    while planned < records:
        index = len(plan)
        count = rng.randrange(50, 201)
        when = START + timedelta(minutes=FILE_MINUTES * (index // len(streams)))
        plan.append((index, count, *streams[index % len(streams)], when))
        planned += count
    return plan


def _write_files(out: str, seed: int, plan: list[tuple[int, int, str, str, datetime]]) -> int:
    written = 0
    for index, count, account, region, when in plan:
        records = _file_records(seed, index, count, account, region, when)
        folder = Path(out, "AWSLogs", account, "CloudTrail", region, when.strftime("%Y/%m/%d"))
        folder.mkdir(parents=True, exist_ok=True)
        unique = random.Random(index).getrandbits(64)
        name = f"{account}_CloudTrail_{region}_{when.strftime('%Y%m%dT%H%MZ')}_{unique:016x}.json.gz"
        body = orjson.dumps({"Records": records})  # the same bytes as compact json.dumps, 3x faster
        (folder / name).write_bytes(gzip.compress(body, compresslevel=6, mtime=0))
        written += len(records)
    return written


def generate(out: Path, records: int = DEFAULT_RECORDS, seed: int = DEFAULT_SEED, jobs: int = 2) -> dict[str, Any]:
    """Write the corpus under ``out`` (replacing it) and return its stamp."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    plan = _plan(records, seed)
    slices = [plan[i::jobs] for i in range(jobs)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        total = sum(pool.map(_write_files, [str(out)] * jobs, [seed] * jobs, slices))
    stamp = {"generator": GENERATOR_VERSION, "records_requested": records, "seed": seed, "records": total}
    stamp["files"] = len(plan)
    (out / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return stamp


def ensure_corpus(out: Path, records: int = DEFAULT_RECORDS, seed: int = DEFAULT_SEED) -> tuple[dict[str, Any], bool]:
    """``(stamp, reused)``: reuse the corpus under ``out`` when its stamp matches the parameters."""
    try:
        stamp = json.loads((out / STAMP).read_text())
        if (stamp.get("generator"), stamp.get("records_requested"), stamp.get("seed")) == (
            GENERATOR_VERSION,
            records,
            seed,
        ):
            return stamp, True
    except (OSError, ValueError):
        pass
    return generate(out, records, seed, jobs=max(1, min(2, os.cpu_count() or 1))), False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=Path(".bench/corpus"))
    args = parser.parse_args(argv)
    stamp, reused = ensure_corpus(args.out, args.records, args.seed)
    print(f"{'reused' if reused else 'generated'} {args.out}: {stamp['records']} records in {stamp['files']} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
