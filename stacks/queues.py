"""Encrypted, SSL-only SQS queues: the one place queue settings are decided."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

#: Work queues keep a message four days (the SQS default) before it expires.
QUEUE_RETENTION = Duration.days(4)
#: Failed messages wait two weeks (the SQS maximum) for an operator to redrive them.
DLQ_RETENTION = Duration.days(14)


def encrypted_queue(
    scope: Construct,
    construct_id: str,
    key: kms.IKey,
    *,
    visibility_timeout: Duration | None = None,
    dead_letter_queue: sqs.IQueue | None = None,
    max_receive_count: int = 5,
    retention: Duration = QUEUE_RETENTION,
) -> sqs.Queue:
    """A queue encrypted with the customer-managed ``key`` whose policy denies non-TLS access."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        # Reusing a data key for 5 minutes keeps KMS calls (and cost) down at no real risk.
        data_key_reuse=Duration.minutes(5),
        enforce_ssl=True,
        visibility_timeout=visibility_timeout,
        retention_period=retention,
        dead_letter_queue=(
            sqs.DeadLetterQueue(queue=dead_letter_queue, max_receive_count=max_receive_count)
            if dead_letter_queue is not None
            else None
        ),
        removal_policy=RemovalPolicy.DESTROY if dead_letter_queue is not None else RemovalPolicy.RETAIN,
    )


def dead_letter_queue(scope: Construct, construct_id: str, key: kms.IKey) -> sqs.Queue:
    """A DLQ: kept on stack deletion (it may hold the only copy of a failed event)."""
    return encrypted_queue(scope, construct_id, key, retention=DLQ_RETENTION)
