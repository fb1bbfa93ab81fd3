"""Monitoring: alarms on every failure path, an encrypted SNS topic, and a dashboard."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.functions import METRICS_NAMESPACE, SERVICE_NAME
from stacks.queues import dead_letter_queue

#: docs/internals.md: the handlers' Powertools metrics (namespace Codewatch, dimension service).
AGGREGATOR_METRICS = (
    "EventsReceived",
    "EventsMatched",
    "EventsNotMatched",
    "EventsSuppressed",
    "DuplicateEvents",
    "MalformedEvents",
    "WindowsWritten",
    "Retries",
    "AllowlistInvalid",
    "AllowlistExpiredEntries",
    "WindowFull",
)
PUBLISHER_METRICS = ("FindingsImported", "FailedFindings", "FindingValidationErrors", "ImportRetries")
#: Pipeline metrics that page someone when they are above zero.

PERIOD = Duration.minutes(5)


def pipeline_metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=PERIOD,
    )


class Monitoring(Construct):
    """``topic`` receives every alarm; ``alarms`` maps a stable name to each alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        alarm_email: str | None,
        dead_letter_queues: dict[str, sqs.IQueue],
        work_queue: sqs.IQueue,
        functions: dict[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True, display_name="codewatch alarms")
        dead_letter_queues = dict(dead_letter_queues)
        self.notification_dlq: sqs.Queue | None = None
        if alarm_email:
            # Notifications SNS cannot deliver (e.g. the subscription was never confirmed) are kept.
            self.notification_dlq = dead_letter_queue(self, "NotificationDlq", key)
            self.topic.add_subscription(
                subscriptions.EmailSubscription(alarm_email, dead_letter_queue=self.notification_dlq)
            )
            dead_letter_queues["NotificationDlq"] = self.notification_dlq
        action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(name: str, metric: cloudwatch.IMetric, description: str) -> None:
            created = cloudwatch.Alarm(
                self,
                f"{name}Alarm",
                metric=metric,
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                # No data means nothing failed (these metrics are only emitted on events).
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"codewatch: {description}",
            )
            created.add_alarm_action(action)
            self.alarms[name] = created

        for name, queue in dead_letter_queues.items():
            alarm(
                name,
                queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                f"{name} holds messages: events or findings were dropped from the pipeline; inspect and redrive",
            )
        for name, function in functions.items():
            alarm(f"{name}Errors", function.metric_errors(period=PERIOD), f"the {name} function failed")
            alarm(f"{name}Throttles", function.metric_throttles(period=PERIOD), f"the {name} function was throttled")
        alarm(
            "AllowlistInvalid",
            pipeline_metric("AllowlistInvalid"),
            "the allowlist parameter is missing or invalid; detection fails open (every event alerts)",
        )
        alarm(
            "FailedFindings",
            pipeline_metric("FailedFindings"),
            "Security Hub refused findings in BatchImportFindings",
        )
        alarm(
            "WindowWriteErrors",
            pipeline_metric("WindowWriteErrors"),
            "the aggregator could not write window items (table missing, access denied, retries spent); "
            "events wait for redelivery, then the DLQ",
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(1))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Aggregator: events",
                left=[pipeline_metric(name) for name in AGGREGATOR_METRICS],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Publisher: findings",
                left=[pipeline_metric(name) for name in PUBLISHER_METRICS],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Queue depth",
                left=[work_queue.metric_approximate_number_of_messages_visible(period=PERIOD, label="ingest queue")]
                + [
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD, label=name)
                    for name, queue in dead_letter_queues.items()
                ],
                right=[work_queue.metric_approximate_age_of_oldest_message(period=PERIOD, label="oldest (s)")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Function errors and throttles",
                left=[f.metric_errors(period=PERIOD, label=f"{n} errors") for n, f in functions.items()]
                + [f.metric_throttles(period=PERIOD, label=f"{n} throttles") for n, f in functions.items()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Function duration (p99)",
                left=[f.metric_duration(period=PERIOD, statistic="p99", label=n) for n, f in functions.items()],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24),
        )
