"""Compliance gates: cdk-nag fails the synth on any unacknowledged finding; cfn-lint is clean;
IAM has no ``Action: "*"`` and every ``Resource: "*"`` is one AWS requires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs

from stacks.application import add_compliance_checks
from tests.infrastructure.conftest import Synth, as_list, statements

#: Every statement allowed ``Resource: "*"`` and why AWS needs it. Key policies are resource
#: policies on the key itself: there "*" means "this key".
WILDCARD_RESOURCE_REASONS = {
    ("AWS::IAM::Policy", "xray:PutTraceSegments"): "X-Ray has no resource-level permissions",
    ("AWS::IAM::Policy", "xray:PutTelemetryRecords"): "X-Ray has no resource-level permissions",
    ("AWS::IAM::Policy", "dynamodb:ListStreams"): "ListStreams has no resource type (stream event source)",
    ("AWS::KMS::Key", "*"): "a key policy's Resource '*' is the key itself",
}


def test_unacknowledged_finding_fails_the_synth(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Bad")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    add_compliance_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()
    for rule in ("AwsSolutions-SQS2", "AwsSolutions-SQS4", "Serverless-SQSRedrivePolicy"):
        assert rule in str(failure.value)


@pytest.mark.parametrize(
    ("rule_id", "passes"), [("AwsSolutions-IAM5", False), ("AwsSolutions-IAM5[Resource::*]", True)]
)
def test_only_the_granular_rule_id_acknowledges_a_granular_finding(tmp_path: Path, rule_id: str, passes: bool) -> None:
    from aws_cdk import Acknowledgment, Validations
    from aws_cdk import aws_iam as iam

    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Granular")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    Validations.of(role).acknowledge(Acknowledgment(id=rule_id, reason="test of the acknowledgment mechanism"))
    add_compliance_checks(app)
    if passes:
        app.synth()
        return
    with pytest.raises(RuntimeError, match=r"AwsSolutions-IAM5\[Resource::\*\]"):
        app.synth()


def _all_templates(default_synth: Synth, org_synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"default/{n}", t) for n, t in default_synth.templates.items()]
    return found + [(f"org/{n}", t) for n, t in org_synth.templates.items()]


def test_no_iam_statement_allows_every_action(default_synth: Synth, org_synth: Synth) -> None:
    for name, template in _all_templates(default_synth, org_synth):
        for logical_id, resource_type, stmt in statements(template):
            if stmt["Effect"] != "Allow":
                continue
            actions = as_list(stmt.get("Action", []))
            if resource_type == "AWS::KMS::Key" and actions == ["kms:*"]:
                # The default key policy: the account root administers its own key (IAM decides who).
                assert stmt["Principal"]["AWS"]["Fn::Join"][1][-1].endswith(":root"), (name, logical_id)
                continue
            assert "*" not in actions, (name, logical_id, stmt)
            assert not any(a.endswith(":*") for a in actions), (name, logical_id, stmt)


def test_every_wildcard_resource_is_required_by_aws(default_synth: Synth, org_synth: Synth) -> None:
    for name, template in _all_templates(default_synth, org_synth):
        for logical_id, resource_type, stmt in statements(template):
            if stmt["Effect"] != "Allow" or "*" not in as_list(stmt.get("Resource", [])):
                continue
            for action in as_list(stmt["Action"]):
                key = (resource_type, "*" if resource_type == "AWS::KMS::Key" else action)
                assert key in WILDCARD_RESOURCE_REASONS, (name, logical_id, action)


def _cfn_lint(path: Path) -> list[str]:
    from cfnlint.api import lint_file  # type: ignore[import-untyped]

    matches = lint_file(path)
    # Errors (E) and warnings (W) fail; informational (I) findings are allowed.
    return [
        f"{m.rule.id} {m.message} ({m.path})"
        for m in matches
        if m.rule.id[0] in "EW" and m.rule.id not in CFN_LINT_IGNORED
    ]


#: cfn-lint rules ignored on purpose, with the reason.
CFN_LINT_IGNORED = {
    # CDK writes DependsOn [Role, Role's DefaultPolicy] on every function so the policy exists before
    # the first invoke; the Role half is redundant with the GetAtt, harmless, and not ours to edit.
    "W3005": "CDK's redundant DependsOn on a Lambda function's role",
}


def test_cfn_lint_default_templates(default_synth: Synth) -> None:
    for stack in default_synth.templates:
        assert _cfn_lint(default_synth.template_path(stack)) == []


def test_cfn_lint_organization_templates(org_synth: Synth) -> None:
    for stack in org_synth.templates:
        assert _cfn_lint(org_synth.template_path(stack)) == []
