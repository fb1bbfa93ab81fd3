"""Organization roll-out: the forwarder as a service-managed CloudFormation StackSet.

The forwarder template is synthesized by its own CDK app (with the same cdk-nag checks) and embedded
in the StackSet as ``TemplateBody``: it has no assets, so member accounts need no CDK bootstrap and
StackSets needs no access to this account's asset bucket.
"""

from __future__ import annotations

import json
import tempfile

from aws_cdk import App, DefaultStackSynthesizer
from aws_cdk import aws_cloudformation as cloudformation
from constructs import Construct

from stacks.config import CodewatchConfig
from stacks.forwarder_stack import ForwarderStack

STACKSET_NAME = "codewatch-forwarder"
#: CloudFormation's limit for an inline template.
TEMPLATE_BODY_LIMIT = 51_200


def forwarder_stackset_template(config: CodewatchConfig) -> dict:
    """The member-account forwarder template, environment-agnostic (AWS::Region/AccountId at deploy)."""
    from stacks.application import add_compliance_checks, cdk_json_context

    with tempfile.TemporaryDirectory(prefix="codewatch-forwarder-") as outdir:
        app = App(outdir=outdir, context=cdk_json_context(), analytics_reporting=False)
        stack = ForwarderStack(
            app,
            "CodewatchForwarder",
            config=config,
            member_findings_role=True,
            # No bootstrap version check: member accounts are never CDK-bootstrapped.
            synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
            description="codewatch forwarder (StackSet): Lambda UpdateFunctionCode events to the security account",
        )
        add_compliance_checks(app)
        return app.synth().get_stack_by_name(stack.stack_name).template


class OrganizationRollout(Construct):
    """A service-managed StackSet: every current and future account of the target OUs, in each region."""

    def __init__(self, scope: Construct, construct_id: str, *, config: CodewatchConfig) -> None:
        super().__init__(scope, construct_id)
        body = json.dumps(forwarder_stackset_template(config), separators=(",", ":"), sort_keys=True)
        if len(body) > TEMPLATE_BODY_LIMIT:
            raise ValueError(f"forwarder template is {len(body)} bytes; CloudFormation accepts {TEMPLATE_BODY_LIMIT}")
        self.stack_set = cloudformation.CfnStackSet(
            self,
            "ForwarderStackSet",
            stack_set_name=STACKSET_NAME,
            description="codewatch: forward Lambda UpdateFunctionCode events to the security account's central bus",
            permission_model="SERVICE_MANAGED",
            call_as=config.stackset_call_as,
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            # The member-findings role has a fixed name (the publisher's policy names it).
            capabilities=["CAPABILITY_NAMED_IAM"] if config.member_findings else ["CAPABILITY_IAM"],
            managed_execution={"Active": True},
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                region_concurrency_type="PARALLEL",
                max_concurrent_percentage=25,
                failure_tolerance_percentage=10,
            ),
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cloudformation.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(config.stackset_target_ous),
                        # The security account is covered by the detection stack (home region) and by
                        # the app's own forwarder stacks (other regions); a StackSet instance there
                        # would forward its home-region events twice.
                        account_filter_type="DIFFERENCE",
                        accounts=[config.security_account_id],
                    ),
                    regions=list(config.stackset_regions),
                )
            ],
            template_body=body,
        )
