"""``codewatch demo``: the whole pipeline, as deployed, on an embedded AWS (moto server on loopback).

1. read the synthesized template (``cdk.out``; synthesized here when missing);
2. start moto server and create what the template declares (``emulator.provision``);
3. put the events on the default bus with ``PutEvents``, as EventBridge envelopes;
4. run the real aggregator and publisher as their event-source mappings would (``emulator.runtime``);
5. print the findings Security Hub holds, and a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

TEMPLATE_NAME = "Codewatch.template.json"
REGION = "us-east-1"
AGGREGATOR = "aggregator.handler.lambda_handler"
PUBLISHER = "publisher.handler.lambda_handler"
SEVERITY_RANK = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally on an embedded AWS emulator and print the findings",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--events", nargs="+", metavar="PATH", help="CloudTrail inputs, in any form hunt reads")
    parser.add_argument("--allowlist", metavar="FILE", help="allowlist document to install before the run")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--template",
        metavar="FILE",
        help=f"synthesized template (default: cdk.out/{TEMPLATE_NAME}, synthesized if absent)",
    )
    return parser


def load_template(path: str | None) -> dict[str, Any]:
    candidate = Path(path) if path else Path("cdk.out") / TEMPLATE_NAME
    if candidate.is_file():
        return json.loads(candidate.read_text(encoding="utf-8"))
    if path:
        raise SystemExit(f"codewatch demo: template {path} not found")
    # Synthesize in-process from the repository's CDK app (the same code `cdk synth` runs).
    sys.path.insert(0, str(Path.cwd()))
    from stacks.application import DETECTION_STACK_NAME, build_app

    app, _ = build_app()
    assembly = app.synth()
    return assembly.get_stack_by_name(DETECTION_STACK_NAME).template


def read_events(paths: Sequence[str], err: TextIO) -> tuple[list[Any], int]:
    """Records from hunt's readers; unreadable input is reported with its place and counted."""
    from codewatch.sanitize import escape_controls
    from codewatch_cli.inputs import iter_candidates, iter_input_files

    problems = 0

    def report(place: str, reason: str) -> None:
        nonlocal problems
        problems += 1
        print(f"codewatch demo: {escape_controls(place)}: {reason}", file=err)

    records = [record for path in iter_input_files(paths, report) for _, record in iter_candidates(path, report)]
    return records, problems


def put_events(records: Sequence[Any], region: str) -> int:
    """PutEvents, ten entries a call, as CloudTrail's integration would deliver them. Returns entries accepted."""
    import boto3

    events = boto3.client("events", region_name=region)
    accepted = 0
    for start in range(0, len(records), 10):
        entries = [
            {"Source": "aws.lambda", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(record)}
            for record in records[start : start + 10]
        ]
        response = events.put_events(Entries=entries)
        accepted += len(entries) - response.get("FailedEntryCount", 0)
    return accepted


def findings(region: str) -> list[dict[str, Any]]:
    """This detection's findings in Security Hub, most severe first."""
    import boto3

    from codewatch_cli.findings_cmd import list_findings

    everything_since = datetime(2000, 1, 1, tzinfo=UTC)
    found, _ = list_findings(boto3.client("securityhub", region_name=region), since=everything_since, limit=None)
    return sorted(found, key=lambda f: (-SEVERITY_RANK.get(f["Severity"].get("Label"), 0), f["Id"]))


def queue_depth(url: str, region: str) -> int:
    import boto3

    attributes = boto3.client("sqs", region_name=region).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def window_counts(table: str, region: str) -> tuple[int, int]:
    """(events counted for alerting, events suppressed), from the window items."""
    import boto3

    from codewatch.window_item import decode_item

    alerting = suppressed = 0
    for page in boto3.client("dynamodb", region_name=region).get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            summary = decode_item(item)
            alerting += summary.count
            suppressed += summary.suppressed_count
    return alerting, suppressed


class Pipeline:
    """A provisioned deployment and its two pollers: what ``codewatch demo`` and the e2e tests drive."""

    def __init__(self, template: dict[str, Any], log: TextIO, region: str = REGION) -> None:
        from codewatch_cli.emulator.provision import provision
        from codewatch_cli.emulator.runtime import Invoker, SqsPoller, StreamPoller

        self.region = region
        self.deployment = provision(template, region)
        self.invoker = Invoker(self.deployment, log)
        self.aggregator = SqsPoller(self.deployment, self.invoker, AGGREGATOR)
        self.publisher = StreamPoller(self.deployment, self.invoker, PUBLISHER)

    def set_allowlist(self, document: str) -> None:
        import boto3

        boto3.client("ssm", region_name=self.region).put_parameter(
            Name=self.deployment.parameter_name, Value=document, Type="String", Overwrite=True
        )

    def run(self, records: Sequence[Any]) -> int:
        accepted = put_events(records, self.region)
        self.settle()
        return accepted

    def settle(self) -> None:
        """Poll until nothing is left to do: the queue drained, the stream read to its end."""
        self.aggregator.drain()
        self.publisher.drain()

    def malformed(self) -> int:
        """Messages the aggregator gave up on: the depth of its queue's redrive target."""
        import boto3

        attributes = boto3.client("sqs", region_name=self.region).get_queue_attributes(
            QueueUrl=self.aggregator.queue_url, AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        target = json.loads(attributes.get("RedrivePolicy", "{}")).get("deadLetterTargetArn")
        urls = [self.deployment.queue_urls[q] for q, arn in self.deployment.queue_arns.items() if arn == target]
        return sum(queue_depth(url, self.region) for url in urls)

    def dead_letters(self) -> dict[str, int]:
        return {name: queue_depth(url, self.region) for name, url in self.deployment.dead_letter_queues.items()}

    def findings(self) -> list[dict[str, Any]]:
        return findings(self.region)

    def window_counts(self) -> tuple[int, int]:
        return window_counts(self.deployment.table_name, self.region)


def run(args: argparse.Namespace) -> int:
    from codewatch_cli.emulator.server import moto_server
    from codewatch_cli.scenario import ALLOWLIST, public_samples, story

    started = time.monotonic()
    problems = 0
    if args.events:
        records, problems = read_events(args.events, sys.stderr)
        allowlist = None
    else:
        records, allowlist = story() + public_samples(), json.dumps(ALLOWLIST)
    if args.allowlist:
        try:
            allowlist = Path(args.allowlist).read_text(encoding="utf-8")
        except OSError as error:
            print(f"codewatch demo: error: cannot read {args.allowlist}: {error.strerror}", file=sys.stderr)
            return 2
    template = load_template(args.template)
    log_path = Path(tempfile.gettempdir()) / "codewatch-demo-functions.log"
    with moto_server(REGION), log_path.open("w", encoding="utf-8") as log:
        pipeline = Pipeline(template, log)
        if allowlist is not None:
            pipeline.set_allowlist(allowlist)
        accepted = pipeline.run(records)
        found = pipeline.findings()
        alerting, suppressed = pipeline.window_counts()
        malformed = pipeline.malformed()
        dead_letters = pipeline.dead_letters()
    out = sys.stdout
    if args.format == "json":
        from codewatch_cli.findings_cmd import iter_json_lines

        out.writelines(iter_json_lines(found))
    else:
        from codewatch_cli.findings_cmd import format_findings_table

        out.write(format_findings_table(found) + "\n")
    summary = "\n".join(
        (
            f"events put: {accepted}",
            f"matched: {alerting + suppressed} ({alerting} alerting, {suppressed} suppressed by the allowlist)",
            f"malformed (in the aggregator's DLQ): {malformed}",
            f"findings: {len(found)}",
            "DLQ depth: " + ", ".join(f"{name}={depth}" for name, depth in sorted(dead_letters.items())),
            f"function logs and metrics: {log_path}",
            f"run time: {time.monotonic() - started:.1f} s",
        )
    )
    print(summary, file=sys.stderr if args.format == "json" else out)
    return 1 if problems else 0
