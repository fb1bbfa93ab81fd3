"""The aggregator Lambda: SQS batches of EventBridge envelopes → DynamoDB window items."""
