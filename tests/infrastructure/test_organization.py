"""Organization mode (issue #7): central bus, forwarders, the StackSet and member-findings mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codewatch.pattern import event_pattern
from stacks.config import CodewatchConfig
from tests.infrastructure.conftest import ORG_CONTEXT, Synth, as_list, one, resources, statements

CONFIG = CodewatchConfig.from_context(ORG_CONTEXT)
# The stack's partition, so the same template serves aws, aws-cn and GovCloud.
CENTRAL_BUS_ARN = {
    "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":events:eu-west-1:111122223333:event-bus/codewatch-central"]]
}
FORWARDER_STACKS = ["CodewatchForwarder-us-east-1", "CodewatchForwarder-eu-central-1"]


@pytest.fixture(scope="module")
def detection_org(org_synth: Synth) -> dict[str, Any]:
    return org_synth.template("Codewatch")


@pytest.fixture(scope="module")
def stackset(detection_org: dict[str, Any]) -> dict[str, Any]:
    return one(detection_org, "AWS::CloudFormation::StackSet")[1]["Properties"]


@pytest.fixture(scope="module")
def member_template(stackset: dict[str, Any]) -> dict[str, Any]:
    return json.loads(stackset["TemplateBody"])


def forwarder_templates(org_synth: Synth, member_template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, org_synth.template(name)) for name in FORWARDER_STACKS] + [("stackset", member_template)]


# --- the security account ---


def test_detection_stack_targets_the_home_region(org_synth: Synth) -> None:
    assert set(org_synth.templates) == {"Codewatch", *FORWARDER_STACKS}


def test_central_bus_admits_only_the_organization(detection_org: dict[str, Any]) -> None:
    bus_id, bus = one(detection_org, "AWS::Events::EventBus")
    assert bus["Properties"]["Name"] == "codewatch-central"
    _, policy = one(detection_org, "AWS::Events::EventBusPolicy")
    stmt = policy["Properties"]["Statement"]
    assert stmt["Effect"] == "Allow"
    assert stmt["Principal"] == {"AWS": "*"}
    assert stmt["Action"] == "events:PutEvents"
    assert stmt["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert stmt["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}


def test_central_bus_rule_is_the_same_rule(detection_org: dict[str, Any]) -> None:
    bus_id, _ = one(detection_org, "AWS::Events::EventBus")
    _, default_rule = one(detection_org, "AWS::Events::Rule", "DefaultBusRule")
    _, central_rule = one(detection_org, "AWS::Events::Rule", "CentralBusRule")
    assert central_rule["Properties"]["EventBusName"] == {"Ref": bus_id}
    assert central_rule["Properties"]["EventPattern"] == default_rule["Properties"]["EventPattern"]
    assert central_rule["Properties"]["EventPattern"] == event_pattern(CONFIG.principals)
    (central_target,) = central_rule["Properties"]["Targets"]
    (default_target,) = default_rule["Properties"]["Targets"]
    for key in ("Arn", "DeadLetterConfig", "RetryPolicy"):
        assert central_target[key] == default_target[key]


def test_publisher_may_assume_member_roles_in_the_organization_only(detection_org: dict[str, Any]) -> None:
    _, fn = one(detection_org, "AWS::Lambda::Function", "Publisher")
    assert fn["Properties"]["Environment"]["Variables"]["MEMBER_FINDINGS_ROLE_NAME"] == "codewatch-member-findings"
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    assert detection_org["Resources"][role_id]["Properties"]["RoleName"] == "codewatch-publisher-eu-west-1"
    assume = [
        s
        for lid, _, s in statements(detection_org)
        if "Publisher" in lid and "sts:AssumeRole" in as_list(s["Action"]) and s.get("Sid")
    ]
    (stmt,) = assume
    assert stmt["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/codewatch-member-findings"]]
    }
    assert stmt["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-a1b2c3d4e5"}}


# --- forwarders (the app's own regions and the StackSet's member template) ---


def test_forwarder_pattern_is_identical_to_the_detection_rule(
    org_synth: Synth, detection_org: dict[str, Any], member_template: dict[str, Any]
) -> None:
    _, detection_rule = one(detection_org, "AWS::Events::Rule", "DefaultBusRule")
    for name, template in forwarder_templates(org_synth, member_template):
        _, rule = one(template, "AWS::Events::Rule")
        assert rule["Properties"]["EventPattern"] == detection_rule["Properties"]["EventPattern"], name
        assert "EventBusName" not in rule["Properties"], name  # the default bus


def test_forwarder_target_role_and_dlq(org_synth: Synth, member_template: dict[str, Any]) -> None:
    for name, template in forwarder_templates(org_synth, member_template):
        _, rule = one(template, "AWS::Events::Rule")
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == CENTRAL_BUS_ARN, name
        role_id = target["RoleArn"]["Fn::GetAtt"][0]
        dlq_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        key_id = template["Resources"][dlq_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
        assert template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True

        role = template["Resources"][role_id]["Properties"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "events.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        assert "Policies" not in role, name
        assert "ManagedPolicyArns" not in role, name
        granted = [
            stmt
            for policy in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for stmt in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        # Everything the role may do: put events on that one bus.
        assert granted == [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": CENTRAL_BUS_ARN}], name

        ssl_only = [
            s
            for p in resources(template, "AWS::SQS::QueuePolicy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert ssl_only, name


def test_app_forwarders_deploy_after_the_detection_stack(org_synth: Synth) -> None:
    manifest = json.loads((org_synth.outdir / "manifest.json").read_text(encoding="utf-8"))
    for name in FORWARDER_STACKS:
        artifact = manifest["artifacts"][name]
        assert artifact["environment"].endswith(f"111122223333/{name.removeprefix('CodewatchForwarder-')}")
        assert "Codewatch" in artifact["dependencies"]
    assert manifest["artifacts"]["Codewatch"]["environment"] == "aws://111122223333/eu-west-1"


def test_member_findings_role_only_in_the_stackset_home_region(
    org_synth: Synth, member_template: dict[str, Any]
) -> None:
    for name in FORWARDER_STACKS:  # the security account publishes its own findings
        assert len(resources(org_synth.template(name), "AWS::IAM::Role")) == 1
    assert member_template["Conditions"] == {"InHomeRegion": {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]}}
    (role,) = [r for r in resources(member_template, "AWS::IAM::Role").values() if "Condition" in r]
    assert role["Condition"] == "InHomeRegion"
    props = role["Properties"]
    assert props["RoleName"] == "codewatch-member-findings"
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {
        "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::111122223333:root"]]}
    }
    assert trust["Condition"] == {
        "StringEquals": {
            "aws:PrincipalArn": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":iam::111122223333:role/codewatch-publisher-eu-west-1"],
                ]
            },
            "aws:PrincipalOrgID": "o-a1b2c3d4e5",
        }
    }
    (policy,) = props["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Action": "securityhub:BatchImportFindings",
            "Effect": "Allow",
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}"
                ":product/${AWS::AccountId}/default"
            },
        }
    ]


# --- the StackSet ---


def test_stackset_is_service_managed_with_auto_deployment(stackset: dict[str, Any]) -> None:
    assert stackset["PermissionModel"] == "SERVICE_MANAGED"
    assert stackset["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert stackset["CallAs"] == "DELEGATED_ADMIN"
    assert stackset["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    (group,) = stackset["StackInstancesGroup"]
    assert group["Regions"] == ["eu-west-1", "us-east-1"]
    assert group["DeploymentTargets"] == {
        "OrganizationalUnitIds": ["ou-ab12-cd34ef56"],
        "AccountFilterType": "DIFFERENCE",
        "Accounts": ["111122223333"],
    }


def test_stackset_template_needs_no_bootstrap_and_fits(
    stackset: dict[str, Any], member_template: dict[str, Any]
) -> None:
    from stacks.organization import TEMPLATE_BODY_LIMIT

    assert len(stackset["TemplateBody"]) < TEMPLATE_BODY_LIMIT
    assert "BootstrapVersion" not in member_template.get("Parameters", {})
    assert "CheckBootstrapVersion" not in member_template.get("Rules", {})
    assert not [r for r in member_template["Resources"].values() if r["Type"] == "AWS::CDK::Metadata"]


def test_stackset_template_policies(member_template: dict[str, Any]) -> None:
    for logical_id, resource_type, stmt in statements(member_template):
        actions = as_list(stmt.get("Action", []))
        if resource_type == "AWS::KMS::Key" and actions == ["kms:*"]:
            continue  # the key's default administration statement for the account root
        assert "*" not in actions, logical_id
        if stmt["Effect"] == "Allow" and resource_type != "AWS::KMS::Key":
            assert "*" not in as_list(stmt.get("Resource", [])), logical_id


def test_stackset_template_passes_cfn_lint(member_template: dict[str, Any], tmp_path: Path) -> None:
    from tests.infrastructure.test_compliance import _cfn_lint

    path = tmp_path / "forwarder-stackset.template.json"
    path.write_text(json.dumps(member_template), encoding="utf-8")
    assert _cfn_lint(path) == []


def test_without_member_findings_there_is_no_member_role(org_synth: Synth) -> None:
    from stacks.organization import forwarder_stackset_template

    config = CodewatchConfig.from_context({**ORG_CONTEXT, "member_findings": False})
    template = forwarder_stackset_template(config)  # with the cdk-nag checks, like the real app
    assert len(resources(template, "AWS::IAM::Role")) == 1
    assert "Conditions" not in template
