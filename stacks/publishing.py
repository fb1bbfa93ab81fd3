"""Publishing: the publisher Lambda on the table's stream, importing findings into Security Hub."""

from __future__ import annotations

import jsii
from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import CodewatchConfig
from stacks.functions import METRICS_NAMESPACE, SERVICE_NAME, LambdaPackaging, PipelineFunction
from stacks.queues import dead_letter_queue

#: This account's own "default" product: the only product a custom integration may import into.
DEFAULT_PRODUCT_ARN = (
    "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default"
)


@jsii.implements(lambda_.IEventSourceDlq)
class _ExplicitSqsDlq:
    """An on-failure SQS destination granting exactly what Lambda needs to send the failure record.

    CDK's ``SqsDlq`` grants ``kms:GenerateDataKey*``/``kms:ReEncrypt*`` on the queue key; Lambda only
    calls ``sqs:SendMessage``, for which SQS needs ``kms:GenerateDataKey`` and ``kms:Decrypt``.
    """

    def __init__(self, queue: sqs.IQueue, key: kms.IKey) -> None:
        self._queue = queue
        self._key = key

    def bind(
        self, _target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        target_handler.add_to_role_policy(
            iam.PolicyStatement(sid="SendFailedBatches", actions=["sqs:SendMessage"], resources=[self._queue.queue_arn])
        )
        target_handler.add_to_role_policy(
            iam.PolicyStatement(
                sid="EncryptFailedBatches",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self._key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{Aws.REGION}.amazonaws.com"}},
            )
        )
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)


class Publishing(Construct):
    """``function`` (publisher) and ``failure_queue`` (stream batches that exhausted their retries)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CodewatchConfig,
        packaging: LambdaPackaging,
        table: dynamodb.ITable,
        data_key: kms.IKey,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        if config.member_findings:
            environment["MEMBER_FINDINGS_ROLE_NAME"] = config.member_findings_role_name
        self.publisher = PipelineFunction(
            self,
            "Publisher",
            packaging=packaging,
            handler="publisher.handler.lambda_handler",
            description="codewatch publisher: window table stream -> Security Hub BatchImportFindings",
            environment=environment,
            memory_mb=config.publisher_memory_mb,
            timeout=Duration.seconds(config.publisher_timeout_seconds),
            logs_key=logs_key,
            log_retention_days=config.log_retention_days,
            # Member accounts' trust policies name this role, so its name must be known at synth.
            role_name=config.publisher_role_name if config.member_findings else None,
        )
        self.function = self.publisher.function
        role = self.publisher.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ImportFindingsIntoThisAccount",
                actions=["securityhub:BatchImportFindings"],
                resources=[Fn.sub(DEFAULT_PRODUCT_ARN)],
            )
        )
        if config.member_findings:
            # Account IDs of member accounts are unknown at synth (and change as accounts join), so
            # the account is a wildcard; aws:ResourceOrgID pins the role to this organization.
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="AssumeMemberFindingsRole",
                    actions=["sts:AssumeRole"],
                    resources=[f"arn:{Aws.PARTITION}:iam::*:role/{config.member_findings_role_name}"],
                    conditions={"StringEquals": {"aws:ResourceOrgID": config.organization_id}},
                )
            )

        self.failure_queue = dead_letter_queue(self, "FailureQueue", data_key)
        self.function.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=config.publisher_batch_size,
                max_batching_window=Duration.seconds(config.publisher_batching_window_seconds),
                bisect_batch_on_error=True,
                retry_attempts=config.publisher_max_retries,
                max_record_age=Duration.seconds(config.publisher_max_record_age_seconds),
                report_batch_item_failures=True,
                on_failure=_ExplicitSqsDlq(self.failure_queue, data_key),
                # TTL deletions arrive as REMOVE records; they must never touch findings.
                filters=[lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.or_("INSERT", "MODIFY")})],
            )
        )
