"""Organization mode end to end (issue #7): two accounts on one moto server.

The security account runs the detection stack (central bus and its rule included); a member account gets
the forwarder exactly as the StackSet's ``TemplateBody`` declares it. An ``UpdateFunctionCode`` event on the
member account's default bus must travel member rule → central bus → queue → aggregator → table → publisher
and become a finding that names the member account. The security account's own forwarder stack in another
region (``forwarder_regions``) feeds the same central bus.

What moto does and does not check here (moto 5.2.5):
- a rule target that is an event bus in another account is delivered (``moto/events/models.py``,
  ``Rule.send_to_targets``, the ``event-bus`` branch): that hop is moto's, not ours. moto re-creates the
  event from source, detail-type and detail (new ``id`` and ``time``), ignores the target's ``RoleArn`` and
  DLQ, never evaluates the central bus's resource policy, and leaves ``account`` out of every event it
  delivers (``moto/events/utils.py``, ``DEFAULT_EVENT_INPUT_TEMPLATE``). The aggregator reads only
  ``detail``, so none of this changes what it counts;
- ``AssumeRole`` needs no role and checks no trust policy (``moto/sts/models.py``, ``assume_role``), and
  ``BatchImportFindings`` checks neither ``AwsAccountId`` nor ``ProductArn``: the assertions below on the
  role's declared trust and permissions, and on the account each finding names, are the checks.
"""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import boto3
import pytest

from codewatch.asff import validate_finding
from codewatch.finding import GENERATOR_ID
from codewatch_cli.demo import PUBLISHER, Pipeline, put_events
from codewatch_cli.emulator.provision import DEFAULT_ACCOUNT, Deployment, provision
from tests.infrastructure.conftest import ORG_CONTEXT, Synth, synthesize
from tests.support.cloudtrail import code_update

REGION = "us-east-1"
# The pipeline runs with moto's default credentials, so the security account is moto's default account.
SECURITY = DEFAULT_ACCOUNT
MEMBER = "210987654321"
OTHER_REGION = "us-west-2"  # one of the security account's forwarder_regions


@pytest.fixture(scope="session")
def org_synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[[bool], Synth]:
    """The organization app for the emulator's account and region, by ``member_findings``; built on first use."""
    built: dict[bool, Synth] = {}

    def synth(member_findings: bool) -> Synth:
        if member_findings not in built:
            context = {
                **ORG_CONTEXT,
                "security_account_id": SECURITY,
                "home_region": REGION,
                "forwarder_regions": [OTHER_REGION],
                "stackset_regions": [REGION],
                "member_findings": member_findings,
            }
            built[member_findings] = synthesize(context, tmp_path_factory.mktemp("cdk-org-e2e"))
        return built[member_findings]

    return synth


@pytest.fixture
def emulator(endpoint: str) -> str:
    """The session's moto server, emptied: every account's resources and credentials are forgotten."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return endpoint


def account_session(account: str) -> boto3.Session:
    """Credentials in ``account``: moto derives a request's account from its access key, and the keys
    AssumeRole hands out belong to the role's account (as an organization's admin role would)."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="codewatch-e2e"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def forwarder_template(detection: dict[str, Any]) -> dict[str, Any]:
    [stack_set] = [r for r in detection["Resources"].values() if r["Type"] == "AWS::CloudFormation::StackSet"]
    return json.loads(stack_set["Properties"]["TemplateBody"])


def deploy_forwarder(detection: dict[str, Any], member: boto3.Session) -> Deployment:
    """One StackSet instance: the forwarder in the member account's home-region stack."""
    return provision(forwarder_template(detection), REGION, MEMBER, session=member)


def publisher_environment(detection: dict[str, Any]) -> dict[str, Any]:
    [publisher] = [
        r["Properties"]
        for r in detection["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == PUBLISHER
    ]
    return dict(publisher["Environment"]["Variables"])


def put_on_default_bus(session: boto3.Session, records: Sequence[dict[str, Any]]) -> None:
    """CloudTrail's delivery to that account's default bus."""
    entries = [
        {"Source": "aws.lambda", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(record)}
        for record in records
    ]
    response = session.client("events").put_events(Entries=entries)
    assert response["FailedEntryCount"] == 0


def hub_findings(session: boto3.Session) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in session.client("securityhub").get_paginator("get_findings").paginate():
        found.extend(f for f in page["Findings"] if f.get("GeneratorId") == GENERATOR_ID)  # moto ignores Filters
    return found


def member_update(event_id: str, **overrides: Any) -> dict[str, Any]:
    """A developer of the member account replaces a function's code there."""
    fields: dict[str, Any] = {"account": MEMBER, "user_arn": f"arn:aws:iam::{MEMBER}:user/dev"}
    return code_update(event_id=event_id, **{**fields, **overrides})


def in_region(record: dict[str, Any], region: str) -> dict[str, Any]:
    """The same call, made in another region."""
    arn = record["responseElements"]["functionArn"]
    record["responseElements"]["functionArn"] = arn.replace(f":{record['awsRegion']}:", f":{region}:")
    record["awsRegion"] = region
    return record


def product_arn(account: str) -> str:
    return f"arn:aws:securityhub:{REGION}:{account}:product/{account}/default"


def test_member_event_reaches_the_central_bus_and_names_the_member_account(
    emulator: str, org_synth: Callable[[bool], Synth]
) -> None:
    detection = org_synth(False).template("Codewatch")
    assert "MEMBER_FINDINGS_ROLE_NAME" not in publisher_environment(detection)
    pipeline = Pipeline(detection, io.StringIO(), REGION)
    member = account_session(MEMBER)
    assert member.client("sts").get_caller_identity()["Account"] == MEMBER

    # Without a forwarder the member account's events stay there: what follows is the forwarder's doing.
    put_on_default_bus(member, [member_update("member-1")])
    pipeline.settle()
    assert pipeline.findings() == []

    forwarder = deploy_forwarder(detection, member)
    [target] = member.client("events").list_targets_by_rule(Rule=forwarder.rules[0])["Targets"]
    assert target["Arn"] == f"arn:aws:events:{REGION}:{SECURITY}:event-bus/codewatch-central"
    assert target["RoleArn"].startswith(f"arn:aws:iam::{MEMBER}:role/")
    put_on_default_bus(
        member,
        [
            member_update("member-1"),
            member_update("member-2", event_time="2026-11-30T10:20:00Z"),
            member_update("member-denied", error_code="AccessDeniedException"),  # failed calls are no finding
        ],
    )
    pipeline.settle()

    [finding] = pipeline.findings()
    assert validate_finding(finding) == []
    # Security Hub takes a custom provider's findings for the calling account only: the member account
    # is named in Resources and ProductFields.
    assert finding["AwsAccountId"] == SECURITY
    assert finding["ProductArn"] == product_arn(SECURITY)
    assert [r["Id"] for r in finding["Resources"]] == [f"arn:aws:lambda:{REGION}:{MEMBER}:function:payments-api"]
    fields = finding["ProductFields"]
    assert fields["codewatch/aws_account_id"] == MEMBER
    assert fields["codewatch/user_arn"] == f"arn:aws:iam::{MEMBER}:user/dev"
    assert fields["codewatch/count"] == "2"
    assert pipeline.window_counts() == (2, 0)
    assert set(pipeline.dead_letters().values()) == {0}
    [forward_dlq] = forwarder.dead_letter_queues.values()
    depth = member.client("sqs").get_queue_attributes(QueueUrl=forward_dlq, AttributeNames=["All"])["Attributes"]
    assert depth["ApproximateNumberOfMessages"] == "0"


def test_member_findings_mode_imports_into_the_member_account_through_its_role(
    emulator: str, org_synth: Callable[[bool], Synth]
) -> None:
    detection = org_synth(True).template("Codewatch")
    role_name = publisher_environment(detection)["MEMBER_FINDINGS_ROLE_NAME"]
    pipeline = Pipeline(detection, io.StringIO(), REGION)
    member = account_session(MEMBER)
    deploy_forwarder(detection, member)
    # Member-findings mode needs Security Hub on in each member account (docs/organization.md).
    member.client("securityhub").enable_security_hub(EnableDefaultStandards=False)

    # The role as the StackSet created it: only the publisher (by the name the detection stack gives it)
    # may assume it, and it may import into this account's own default product only.
    iam = member.client("iam")
    role = iam.get_role(RoleName=role_name)["Role"]
    [publisher_role] = [
        r["Properties"]["RoleName"]
        for r in detection["Resources"].values()
        if r["Type"] == "AWS::IAM::Role" and "RoleName" in r["Properties"]
    ]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{SECURITY}:root"}
    assert trust["Condition"]["StringEquals"]["aws:PrincipalArn"] == f"arn:aws:iam::{SECURITY}:role/{publisher_role}"
    [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    [grant] = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]["Statement"]
    assert (grant["Action"], grant["Resource"]) == ("securityhub:BatchImportFindings", product_arn(MEMBER))
    assert not role.get("RoleLastUsed", {}).get("LastUsedDate")

    put_on_default_bus(member, [member_update("member-1")])
    # The security account's own calls still land in the security account.
    assert put_events([code_update(event_id="security-1", function="audit-trail")], REGION) == 1
    pipeline.settle()

    [member_finding] = hub_findings(member)
    assert validate_finding(member_finding) == []
    assert member_finding["AwsAccountId"] == MEMBER
    assert member_finding["ProductArn"] == product_arn(MEMBER)
    assert [r["Id"] for r in member_finding["Resources"]] == [f"arn:aws:lambda:{REGION}:{MEMBER}:function:payments-api"]
    assert member_finding["ProductFields"]["codewatch/aws_account_id"] == MEMBER
    [own] = pipeline.findings()  # nothing about the member account is left in the security account
    assert (own["AwsAccountId"], own["ProductArn"]) == (SECURITY, product_arn(SECURITY))
    assert own["ProductFields"]["codewatch/aws_account_id"] == SECURITY
    # The import went through the member account's role (moto stamps a role when its keys are used).
    assert iam.get_role(RoleName=role_name)["Role"]["RoleLastUsed"].get("LastUsedDate")
    # No import failed (a failing one would end in the publisher's on-failure queue, one of these).
    assert set(pipeline.dead_letters().values()) == {0}


def test_security_account_other_region_forwards_to_the_home_region(
    emulator: str, org_synth: Callable[[bool], Synth]
) -> None:
    synth = org_synth(False)
    pipeline = Pipeline(synth.template("Codewatch"), io.StringIO(), REGION)
    # The app's own forwarder stack for that region, deployed into the security account.
    forwarder = provision(synth.template(f"CodewatchForwarder-{OTHER_REGION}"), OTHER_REGION, SECURITY)
    [target] = boto3.client("events", region_name=OTHER_REGION).list_targets_by_rule(Rule=forwarder.rules[0])["Targets"]
    assert target["Arn"] == f"arn:aws:events:{REGION}:{SECURITY}:event-bus/codewatch-central"

    put_on_default_bus(
        boto3.Session(region_name=OTHER_REGION), [in_region(code_update(event_id="west-1"), OTHER_REGION)]
    )
    pipeline.settle()

    [finding] = pipeline.findings()
    assert validate_finding(finding) == []
    assert (finding["AwsAccountId"], finding["ProductArn"]) == (SECURITY, product_arn(SECURITY))
    [resource] = finding["Resources"]
    assert (resource["Id"], resource["Region"]) == (
        f"arn:aws:lambda:{OTHER_REGION}:{SECURITY}:function:payments-api",
        OTHER_REGION,
    )
