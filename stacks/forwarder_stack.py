"""ForwarderStack: a member account's (or another region's) default-bus rule → the central bus.

Deployed two ways (see docs/organization.md): by a service-managed StackSet into every account of the
target OUs, and by this app into each of the security account's other regions.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnCondition,
    Fn,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from codewatch.pattern import event_pattern
from stacks.config import CodewatchConfig
from stacks.ingest import pattern_rule
from stacks.publishing import DEFAULT_PRODUCT_ARN
from stacks.queues import dead_letter_queue


class ForwarderStack(Stack):
    """The same rule as the detection stack, targeting the security account's central bus.

    ``member_findings_role``: also create (in the home region only; IAM is global) the role the
    security account's publisher assumes to import findings into this account.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CodewatchConfig,
        member_findings_role: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not config.organization_mode:
            raise ValueError("ForwarderStack needs organization_id, security_account_id and home_region")
        self.config = config
        self.pattern = event_pattern(config.principals)
        self.central_bus_arn = config.central_bus_arn(Aws.PARTITION)

        key = kms.Key(
            self,
            "DlqKey",
            description="codewatch forwarder: dead-letter queue",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.dlq = dead_letter_queue(self, "ForwardDlq", key)

        # The role EventBridge uses to put events on the central bus. The EventBus target below grants
        # it events:PutEvents on that one bus ARN, and nothing else is granted to it.
        self.role = iam.Role(
            self,
            "ForwardRole",
            description="codewatch: EventBridge puts matched events on the security account's central bus",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                # Only EventBridge acting for this account may assume it (confused-deputy guard).
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        self.rule = pattern_rule(
            self,
            "ForwardRule",
            pattern=self.pattern,
            description="codewatch: forward successful Lambda UpdateFunctionCode calls to the security account",
        )
        central_bus = events.EventBus.from_event_bus_arn(self, "CentralBus", self.central_bus_arn)
        # EventBridge applies its default retry policy (24 h, 185 attempts) to event-bus targets and
        # accepts no RetryPolicy on them; what still fails lands in the DLQ.
        self.rule.add_target(targets.EventBus(central_bus, role=self.role, dead_letter_queue=self.dlq))
        # EventBridge encrypts failed events into the DLQ with this key, acting for this account.
        # (Naming the rule's ARN here would be a key -> rule -> DLQ -> key dependency cycle; the DLQ's
        # queue policy already admits only this rule.)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeToKeepFailedEvents",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy: this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        Validations.of(self.dlq).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is the forward rule target's dead-letter queue; a DLQ of a DLQ would only move "
                "the problem.",
            ),
            Acknowledgment(
                id="Serverless-SQSRedrivePolicy",
                reason="This queue is the forward rule target's dead-letter queue; it has no consumer to redrive from.",
            ),
        )

        self.member_findings_role: iam.Role | None = None
        if member_findings_role and config.member_findings:
            self._member_findings_role(config)

    def _member_findings_role(self, config: CodewatchConfig) -> None:
        """The role the security account's publisher assumes to import this account's findings."""
        publisher_arn = f"arn:{Aws.PARTITION}:iam::{config.security_account_id}:role/{config.publisher_role_name}"
        role = iam.Role(
            self,
            "MemberFindingsRole",
            role_name=config.member_findings_role_name,
            description="codewatch: the security account's publisher imports this account's findings",
            # Trust the security account, but only its publisher role, and only inside the organization.
            # (A principal ARN in the trust policy itself would break if that role were ever recreated.)
            assumed_by=iam.AccountPrincipal(config.security_account_id).with_conditions(
                {
                    "StringEquals": {
                        "aws:PrincipalArn": publisher_arn,
                        "aws:PrincipalOrgID": config.organization_id,
                    }
                }
            ),
            inline_policies={
                "ImportFindingsIntoThisAccount": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["securityhub:BatchImportFindings"],
                            # This account's own default product in the home region, nothing else.
                            resources=[Fn.sub(DEFAULT_PRODUCT_ARN)],
                        )
                    ]
                )
            },
        )
        # IAM is global: one role per account, created by the home region's stack instance only.
        in_home_region = CfnCondition(
            self, "InHomeRegion", expression=Fn.condition_equals(Aws.REGION, config.home_region)
        )
        cfn_role = role.node.default_child
        assert isinstance(cfn_role, iam.CfnRole)
        cfn_role.cfn_options.condition = in_home_region
        self.member_findings_role = role
