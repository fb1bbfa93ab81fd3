"""Customer-managed KMS keys: one for the pipeline's data (queues, table, topic), one for its logs.

Two keys keep the CloudWatch Logs service principal away from the key that protects events and
window items, and let each key policy name only the services that need it.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class Encryption(Construct):
    """``data_key`` for SQS, DynamoDB and SNS; ``logs_key`` for the Lambda log groups."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        self.data_key = kms.Key(
            self,
            "DataKey",
            description="codewatch: queues, window table and alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # EventBridge's use of this key (ingest queue and target DLQ) is granted by the rule targets,
        # conditioned on this account (aws-events:eventsTargetQueueSameAccount in cdk.json).
        # CloudWatch alarms publish to the encrypted SNS topic.
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )

        # SNS moves undeliverable alarm notifications to an encrypted DLQ.
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSnsToKeepUndeliveredNotifications",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )

        self.logs_key = kms.Key(
            self,
            "LogsKey",
            description="codewatch: Lambda log groups",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The regional CloudWatch Logs principal, only for this account's log groups (the
        # encryption context names the log group: AWS's documented condition).
        self.logs_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{region}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
