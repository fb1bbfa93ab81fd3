"""DetectionStack: the security account's pipeline, composed from one construct per unit."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import Construct

from codewatch.pattern import event_pattern
from stacks.aggregation import Aggregation, queue_visibility_timeout
from stacks.allowlist import Allowlist
from stacks.config import CodewatchConfig
from stacks.encryption import Encryption
from stacks.functions import LambdaPackaging, PipelineFunction
from stacks.ingest import Ingest
from stacks.monitoring import Monitoring
from stacks.publishing import Publishing


class DetectionStack(Stack):
    """Rule → queue → aggregator → table → publisher → Security Hub, with alarms and a dashboard."""

    def __init__(self, scope: Construct, construct_id: str, *, config: CodewatchConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.pattern = event_pattern(config.principals)

        self.encryption = Encryption(self, "Encryption")
        packaging = LambdaPackaging(self, "Packaging", powertools_version=config.powertools_version)
        self.allowlist = Allowlist(self, "Allowlist", parameter_name=config.allowlist_parameter_name)
        self.ingest = Ingest(
            self,
            "Ingest",
            pattern=self.pattern,
            key=self.encryption.data_key,
            queue_visibility_timeout=queue_visibility_timeout(config),
            organization_id=config.organization_id,
            central_bus_name=config.central_bus_name,
        )
        self.aggregation = Aggregation(
            self,
            "Aggregation",
            config=config,
            packaging=packaging,
            queue=self.ingest.queue,
            allowlist=self.allowlist,
            data_key=self.encryption.data_key,
            logs_key=self.encryption.logs_key,
        )
        self.publishing = Publishing(
            self,
            "Publishing",
            config=config,
            packaging=packaging,
            table=self.aggregation.table,
            data_key=self.encryption.data_key,
            logs_key=self.encryption.logs_key,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            key=self.encryption.data_key,
            alarm_email=config.alarm_email,
            dead_letter_queues={
                **self.ingest.dead_letter_queues,
                "PublisherFailureQueue": self.publishing.failure_queue,
            },
            work_queue=self.ingest.queue,
            functions={"Aggregator": self.aggregation.function, "Publisher": self.publishing.function},
        )
        self._acknowledge_nag_findings()

    def _acknowledge_nag_findings(self) -> None:
        """The few cdk-nag findings kept on purpose, each on the narrowest construct, with its reason."""
        _acknowledge_function(
            self.aggregation.aggregator, "a message that keeps failing goes to the ingest queue's redrive DLQ"
        )
        _acknowledge_function(
            self.publishing.publisher, "a stream batch that exhausts its retries goes to the on-failure queue"
        )
        for child in self.aggregation.function.node.children:
            if child.node.id.startswith("SqsEventSource"):
                ack(
                    child,
                    "Serverless-LambdaEventSourceMappingDestination",
                    "SQS event sources take no on-failure destination: a message that keeps failing goes to the "
                    "ingest queue's redrive DLQ (maxReceiveCount 5), which is alarmed.",
                )
        # Queues that only ever receive failures: they are the DLQs, not consumers of one.
        dlqs = [
            (self.ingest.queue_dlq, "the ingest queue's redrive target"),
            (self.ingest.target_dlq, "the EventBridge rule targets' dead-letter queue"),
            (self.publishing.failure_queue, "the publisher event source's on-failure destination"),
        ]
        if self.monitoring.notification_dlq is not None:
            dlqs.append((self.monitoring.notification_dlq, "the alarm e-mail subscription's dead-letter queue"))
        for dlq, what in dlqs:
            ack(dlq, "AwsSolutions-SQS3", f"This queue is {what}; a DLQ of a DLQ would only move the problem.")
            ack(dlq, "Serverless-SQSRedrivePolicy", f"This queue is {what}; it has no consumer to redrive from.")
        # grant_stream_read's dynamodb:ListStreams: the action has no resource type, so AWS requires "*".
        ack(
            self.publishing.publisher.role,
            "AwsSolutions-IAM5[Resource::*]",
            "dynamodb:ListStreams (stream event source) and xray:PutTraceSegments/PutTelemetryRecords "
            "(active tracing) support no resource-level permissions; AWS requires Resource '*'.",
        )
        if self.config.member_findings:
            ack(
                self.publishing.publisher.role,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/{self.config.member_findings_role_name}]",
                "Member account IDs are unknown at synth and change as accounts join; the role name is fixed and "
                "aws:ResourceOrgID restricts the wildcard account to this organization.",
            )
        ack(
            self.aggregation.aggregator.role,
            "AwsSolutions-IAM5[Resource::*]",
            "xray:PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.",
        )


def ack(construct: Construct, rule_id: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


RUNTIME_PIN_REASON = (
    "Pinned to python3.13 on purpose: the AWS-published Powertools layer in use is built for python3.13/arm64 "
    "and must match the runtime's Python minor version."
)


def _acknowledge_function(function: PipelineFunction, failure_path: str) -> None:
    ack(function.function, "AwsSolutions-L1", RUNTIME_PIN_REASON)
    ack(function.function, "Serverless-LambdaLatestVersion", RUNTIME_PIN_REASON)
    ack(
        function.function,
        "Serverless-LambdaDLQ",
        f"Invoked only synchronously by its event source mapping ({failure_path}); a function DLQ applies "
        "to asynchronous invocations, which never happen here.",
    )
