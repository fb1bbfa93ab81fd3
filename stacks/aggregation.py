"""Aggregation: the window table and the aggregator Lambda fed by the ingest queue."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.allowlist import Allowlist
from stacks.config import CodewatchConfig
from stacks.functions import METRICS_NAMESPACE, SERVICE_NAME, LambdaPackaging, PipelineFunction
from stacks.ingest import INGEST_MAX_RECEIVE_COUNT


def queue_visibility_timeout(config: CodewatchConfig) -> Duration:
    """AWS's rule for SQS event sources: at least 6x the function timeout, plus the batching window."""
    return Duration.seconds(6 * config.aggregator_timeout_seconds + config.aggregator_batching_window_seconds)


class Aggregation(Construct):
    """``table`` (pk/sk, TTL ``expires_at``, stream NEW_IMAGE) and ``function`` (the aggregator)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CodewatchConfig,
        packaging: LambdaPackaging,
        queue: sqs.IQueue,
        allowlist: Allowlist,
        data_key: kms.IKey,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "WindowTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expires_at",
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=data_key,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.aggregator = PipelineFunction(
            self,
            "Aggregator",
            packaging=packaging,
            handler="aggregator.handler.lambda_handler",
            description="codewatch aggregator: SQS batch of EventBridge envelopes -> DynamoDB windows",
            environment={
                "TABLE_NAME": self.table.table_name,
                "ALLOWLIST_PARAMETER": allowlist.parameter_name,
                "ALLOWLIST_CACHE_SECONDS": str(config.allowlist_cache_seconds),
                "WINDOW_MINUTES": str(config.window_minutes),
                "RETENTION_DAYS": str(config.retention_days),
                "PRINCIPAL_TYPES": config.principals.describe(),
                "MAX_RECEIVE_COUNT": str(INGEST_MAX_RECEIVE_COUNT),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            memory_mb=config.aggregator_memory_mb,
            timeout=Duration.seconds(config.aggregator_timeout_seconds),
            logs_key=logs_key,
            log_retention_days=config.log_retention_days,
        )
        self.function = self.aggregator.function
        role = self.aggregator.role

        # The handler's only table call is the conditional UpdateItem (see docs/internals.md).
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="WriteWindows", actions=["dynamodb:UpdateItem"], resources=[self.table.table_arn])
        )
        # DynamoDB uses the table's customer-managed key on the caller's behalf.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UseTableKeyThroughDynamoDB",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[data_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
            )
        )
        allowlist.grant_read(role)

        # Receive/delete on the queue and kms:Decrypt of its messages come with the event source.
        self.function.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=config.aggregator_batch_size,
                max_batching_window=Duration.seconds(config.aggregator_batching_window_seconds),
                max_concurrency=config.aggregator_max_concurrency,
                report_batch_item_failures=True,
            )
        )
