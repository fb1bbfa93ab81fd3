"""Allowlist: the SSM String parameter the aggregator reads (and nothing in the stack writes)."""

from __future__ import annotations

import json

from aws_cdk import Arn, ArnComponents, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from codewatch.allowlist import EMPTY_DOCUMENT

EMPTY_ALLOWLIST = json.dumps(EMPTY_DOCUMENT)


class Allowlist(Construct):
    """Created with a valid empty document; operators edit it with ``codewatch allowlist``."""

    def __init__(self, scope: Construct, construct_id: str, *, parameter_name: str) -> None:
        super().__init__(scope, construct_id)
        self.parameter_name = parameter_name
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=parameter_name,
            string_value=EMPTY_ALLOWLIST,
            description="codewatch allowlist (JSON, see DESIGN.md); invalid documents fail open",
            tier=ssm.ParameterTier.STANDARD,
        )
        # Operators' entries (and the parameter's 100-version history) outlive the stack, like the table's
        # data: deleting the stack must not silently drop what the team decided to suppress and why.
        self.parameter.apply_removal_policy(RemovalPolicy.RETAIN)

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """``ssm:GetParameter`` on this one parameter: all the handler calls."""
        arn = Arn.format(
            ArnComponents(service="ssm", resource="parameter", resource_name=self.parameter_name.lstrip("/")),
            Stack.of(self),
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(sid="ReadAllowlist", actions=["ssm:GetParameter"], resources=[arn])
        )
