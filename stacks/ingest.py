"""Ingest: EventBridge rule(s) carrying the detection pattern, into an encrypted SQS queue."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.queues import dead_letter_queue, encrypted_queue

#: Deliveries of an event to the aggregator before it rests in the DLQ; the aggregator fails open on the last.
INGEST_MAX_RECEIVE_COUNT = 5

#: EventBridge retries delivery to the queue for up to a day before the event goes to the target DLQ.
TARGET_RETRY_ATTEMPTS = 185
TARGET_MAX_EVENT_AGE = Duration.hours(24)


def pattern_rule(
    scope: Construct,
    construct_id: str,
    *,
    pattern: dict[str, Any],
    description: str,
    event_bus: events.IEventBus | None = None,
) -> events.Rule:
    """A rule whose template carries ``pattern`` exactly.

    CDK's ``EventPattern`` renames and reshapes keys (``detail-type``, nested matchers), so the L2
    rule gets a placeholder and the L1 ``EventPattern`` property is overridden with the dict from
    ``codewatch.pattern.event_pattern``: the template holds that dict and nothing else.
    """
    rule = events.Rule(
        scope,
        construct_id,
        description=description,
        event_bus=event_bus,
        event_pattern=events.EventPattern(source=pattern["source"]),
    )
    cfn_rule = rule.node.default_child
    assert isinstance(cfn_rule, events.CfnRule)
    cfn_rule.add_property_override("EventPattern", pattern)
    return rule


class Ingest(Construct):
    """Default-bus rule (and, in organization mode, a central bus with the same rule) → queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pattern: dict[str, Any],
        key: kms.IKey,
        queue_visibility_timeout: Duration,
        organization_id: str | None,
        central_bus_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue_dlq = dead_letter_queue(self, "QueueDlq", key)
        self.queue = encrypted_queue(
            self,
            "Queue",
            key,
            visibility_timeout=queue_visibility_timeout,
            dead_letter_queue=self.queue_dlq,
            max_receive_count=INGEST_MAX_RECEIVE_COUNT,
        )
        # Events EventBridge could not deliver after its retries (e.g. the key was disabled).
        self.target_dlq = dead_letter_queue(self, "TargetDlq", key)
        self.rules: list[events.Rule] = []
        self.rules.append(self._rule("DefaultBusRule", pattern, None, "default bus"))

        self.central_bus: events.EventBus | None = None
        if organization_id is not None:
            self.central_bus = events.EventBus(
                self,
                "CentralBus",
                event_bus_name=central_bus_name,
                description="codewatch: UpdateFunctionCode events forwarded from the organization",
            )
            # Only principals of this organization may put events (forwarder roles in member accounts
            # and in this account's other regions).
            self.central_bus.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowPutEventsFromOrganization",
                    principals=[iam.AnyPrincipal()],
                    actions=["events:PutEvents"],
                    resources=[self.central_bus.event_bus_arn],
                    conditions={"StringEquals": {"aws:PrincipalOrgID": organization_id}},
                )
            )
            self.rules.append(self._rule("CentralBusRule", pattern, self.central_bus, "central bus"))

    def _rule(
        self, construct_id: str, pattern: dict[str, Any], bus: events.IEventBus | None, where: str
    ) -> events.Rule:
        rule = pattern_rule(
            self,
            construct_id,
            pattern=pattern,
            event_bus=bus,
            description=f"codewatch: successful Lambda UpdateFunctionCode calls on the {where}",
        )
        rule.add_target(
            targets.SqsQueue(
                self.queue,
                dead_letter_queue=self.target_dlq,
                retry_attempts=TARGET_RETRY_ATTEMPTS,
                max_event_age=TARGET_MAX_EVENT_AGE,
            )
        )
        return rule

    @property
    def dead_letter_queues(self) -> dict[str, sqs.IQueue]:
        return {"QueueDlq": self.queue_dlq, "TargetDlq": self.target_dlq}
