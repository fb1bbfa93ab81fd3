"""``make bench``, pipeline half: what the deployed pipeline costs per event, against a naive per-event design.

1. **Requests.** A burst of ``--events`` (10,000) matching events goes through the demo pipeline (the
   synthesized template on moto server, the real handlers driven as their event-source mappings would).
   A botocore hook on every client (``tests/stress/instrument.py``) counts requests per service and
   operation; with the template's batch sizes these counts are deterministic. The burst is spread over six
   actors and six hourly windows (36 window items) and put on the bus 100 events at a time, settling after
   each: realistic (one actor deploying 10,000 times in one hour is not), and moto-friendly, because moto's
   ``ReceiveMessage`` is O(queue depth) per message and its ``UpdateItem`` slows as one item's ``seen`` set grows.
2. **Cost** per million events a month from those counts and public us-east-1 prices (``PRICES``, with their
   date and source), beside the naive design: one invocation, one SSM read, one write, one import per event.
   Function duration is measured on moto (whose calls are slower than the real services'), so GB-s is indicative.
3. **Cold start.** ``python -X importtime`` of each handler module after ``import boto3`` in the same process,
   median of 5, as the asset ships (no ``.pyc``: Lambda compiles on every cold start) and with ``.pyc``; and
   the zipped asset (``lambda_src`` with the CDK asset's excludes).

Usage: ``python scripts/bench_pipeline.py [--events N] [--json FILE]``.
"""

from __future__ import annotations

# ruff: noqa: S603 - the commands run are this interpreter on fixed arguments
import argparse
import ast
import compileall
import fnmatch
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT / "lambda_src", ROOT / "cli", ROOT):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

REGION = "us-east-1"
CHUNK = 100
SEED = 20261204

# Public on-demand prices, us-east-1, as published on the AWS pricing pages (checked 2026-12-04; free tiers
# ignored, they do not scale with volume):
PRICES = {
    # aws.amazon.com/lambda/pricing: arm64, first 7.5 billion GB-s tier
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000133334,
    # aws.amazon.com/dynamodb/pricing/on-demand: $0.625 per million write request units (since Nov 2024)
    "dynamodb_wru": 0.625 / 1e6,
    # aws.amazon.com/sqs/pricing: standard queue, $0.40 per million requests (each 64 KB chunk is one)
    "sqs_request": 0.40 / 1e6,
    # aws.amazon.com/security-hub/pricing (CSPM): $0.00003 per finding ingestion event after 10,000 a month
    "securityhub_ingestion": 0.00003,
    # aws.amazon.com/systems-manager/pricing: standard throughput is free; higher throughput, which a
    # per-event read needs past 40 TPS, is $0.05 per 10,000 API interactions
    "ssm_higher_throughput": 0.05 / 10_000,
    # aws.amazon.com/cloudwatch/pricing: logs ingestion (standard class), $0.50 per GB
    "logs_gb": 0.50,
}
PRICES_DATE = "2026-12-04"
GOAL_WRITES_PER_EVENT = 1.0
GOAL_IMPORT_CALLS_PER_1000 = 10
GOAL_AGGREGATOR_INVOCATIONS_PER_1000 = 20
GOAL_IMPORT_OVERHEAD = 0.30


@dataclass
class PipelineFigures:
    events: int
    seconds: float
    requests: dict[str, int]
    aggregator_invocations: int
    publisher_invocations: int
    findings_sent: int
    findings_final: int
    ssm_cache_seconds: int
    write_request_units: int
    log_bytes: int
    aggregator_ms: float  # total handler time, all invocations
    publisher_ms: float
    aggregator_memory_mb: int
    publisher_memory_mb: int
    extra: dict[str, Any] = field(default_factory=dict)

    def per_1000(self, value: float) -> float:
        return value * 1000 / self.events


def write_request_units(table: str) -> int:
    """WRUs the burst's writes consumed: an UpdateItem costs ceil(size / 1 KB) of the larger of the item before
    and after, and the item grows by one 12-byte ``seen`` element per event (facts and functions aside)."""
    import boto3

    from codewatch.window_item import item_size

    total = 0
    for page in boto3.client("dynamodb", region_name=REGION).get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            seen = item["seen"]["BS"]  # one element per event written, alerting or suppressed
            element = len(seen[0])
            base = item_size(item) - element * len(seen)
            total += sum(math.ceil((base + element * k) / 1024) for k in range(1, len(seen) + 1))
    return total


def run_pipeline(events: int, template_path: str | None, chunk: int = CHUNK) -> PipelineFigures:
    import boto3

    from codewatch_cli.demo import Pipeline, load_template
    from codewatch_cli.emulator.server import moto_server
    from tests.stress.harness import burst, feed
    from tests.stress.instrument import Instrument

    template = load_template(template_path)
    records = burst(events, seed=SEED)
    log = io.StringIO()
    timings = {"aggregator": 0.0, "publisher": 0.0}
    with moto_server(REGION):
        saved = boto3.DEFAULT_SESSION
        boto3.setup_default_session(region_name=REGION)
        instrument = Instrument()
        instrument.install(boto3.DEFAULT_SESSION.events)
        try:
            pipeline = Pipeline(template, log)
            for name, poller in (("aggregator", pipeline.aggregator), ("publisher", pipeline.publisher)):
                poller.invoke = _timed(poller.invoke, timings, name)
            instrument.requests.clear()
            instrument.calls.clear()
            started = time.perf_counter()
            accepted = feed(pipeline, records, chunk=chunk)
            seconds = time.perf_counter() - started
            requests = {f"{s}:{o}": n for (s, o), n in sorted(instrument.requests.items())}
            matched, suppressed = pipeline.window_counts()
            findings = pipeline.findings()
            wru = write_request_units(pipeline.deployment.table_name)
            dead = pipeline.dead_letters()
        finally:
            boto3.DEFAULT_SESSION = saved
    if accepted != events or matched + suppressed != events or any(dead.values()):
        raise SystemExit(f"bench: the pipeline lost events: put {accepted}, counted {matched + suppressed}, DLQ {dead}")
    functions = pipeline.deployment.functions
    memory = {f.handler.split(".")[0]: _memory(template, logical_id) for logical_id, f in functions.items()}
    cache = int(pipeline.aggregator.mapping.function.environment.get("ALLOWLIST_CACHE_SECONDS", "300"))
    return PipelineFigures(
        events=events,
        seconds=seconds,
        requests=requests,
        aggregator_invocations=pipeline.aggregator.invocations,
        publisher_invocations=pipeline.publisher.invocations,
        findings_sent=instrument.findings_sent,
        findings_final=len(findings),
        ssm_cache_seconds=cache,
        write_request_units=wru,
        log_bytes=len(log.getvalue().encode()),
        aggregator_ms=timings["aggregator"] * 1000,
        publisher_ms=timings["publisher"] * 1000,
        aggregator_memory_mb=memory["aggregator"],
        publisher_memory_mb=memory["publisher"],
    )


def _memory(template: dict[str, Any], logical_id: str) -> int:
    return int(template["Resources"][logical_id]["Properties"].get("MemorySize", 128))


def _timed(invoke: Callable[..., Any], totals: dict[str, float], name: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return invoke(*args)
        finally:
            totals[name] += time.perf_counter() - started

    return call


# --- cost -----------------------------------------------------------------------------------------------


def monthly_cost_per_million(figures: PipelineFigures) -> tuple[dict[str, float], dict[str, float]]:
    """(codewatch, naive) dollars per million events, by line item."""
    per_event = 1 / figures.events
    million = 1e6
    r = figures.requests
    sqs_requests = figures.events + sum(n for key, n in r.items() if key.startswith("sqs:"))  # sends by EventBridge
    gb_seconds = (
        figures.aggregator_ms / 1000 * figures.aggregator_memory_mb / 1024
        + figures.publisher_ms / 1000 * figures.publisher_memory_mb / 1024
    )
    ours = {
        "Lambda requests": (figures.aggregator_invocations + figures.publisher_invocations)
        * per_event
        * million
        * PRICES["lambda_request"],
        "Lambda GB-s": gb_seconds * per_event * million * PRICES["lambda_gb_second"],
        "DynamoDB writes": figures.write_request_units * per_event * million * PRICES["dynamodb_wru"],
        "SQS requests": sqs_requests * per_event * million * PRICES["sqs_request"],
        "Security Hub ingestion": figures.findings_sent * per_event * million * PRICES["securityhub_ingestion"],
        "SSM reads": 0.0,  # standard throughput: one read per container per cache period is free
        "CloudWatch Logs": figures.log_bytes * per_event * million / 1e9 * PRICES["logs_gb"],
    }
    # Naive: EventBridge invokes one function per event (no queue), which reads SSM, writes one item, imports
    # one finding. Its time per event: our aggregator's per-event time plus one import call's share of ours.
    import_calls = max(r.get("securityhub:BatchImportFindings", 0), 1)
    naive_seconds = figures.aggregator_ms / 1000 / figures.events + figures.publisher_ms / 1000 / import_calls
    naive = {
        "Lambda requests": million * PRICES["lambda_request"],
        "Lambda GB-s": naive_seconds * figures.aggregator_memory_mb / 1024 * million * PRICES["lambda_gb_second"],
        "DynamoDB writes": million * PRICES["dynamodb_wru"],
        "SQS requests": 0.0,
        "Security Hub ingestion": million * PRICES["securityhub_ingestion"],
        "SSM reads": million * PRICES["ssm_higher_throughput"],
        # The functions log (EMF metrics, warnings) per invocation, not per event: one invocation per event.
        "CloudWatch Logs": ours["CloudWatch Logs"]
        * figures.events
        / max(figures.aggregator_invocations + figures.publisher_invocations, 1),
    }
    return ours, naive


# --- cold start -----------------------------------------------------------------------------------------


def asset_excludes() -> list[str]:
    """``ASSET_EXCLUDES`` from stacks/functions.py, read without importing the CDK (which starts jsii)."""
    tree = ast.parse((ROOT / "stacks" / "functions.py").read_text())
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id == "ASSET_EXCLUDES" and node.value is not None:
            return list(ast.literal_eval(node.value))
    raise SystemExit("bench: ASSET_EXCLUDES not found in stacks/functions.py")


def _excluded(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        # A pattern matches the path or any of its leading folders, at the root or (with **/) at any depth.
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if pattern.startswith("**/"):
            candidates += [part for part in parts]
        if any(
            fnmatch.fnmatchcase(candidate, bare if pattern.startswith("**/") else pattern) for candidate in candidates
        ):
            return True
    return False


def stage_asset(destination: Path) -> Path:
    """Copy ``lambda_src`` as the CDK asset stages it, into ``destination``; returns the zip of it."""
    patterns = asset_excludes()
    source = ROOT / "lambda_src"
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and not _excluded(relative, patterns):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    archive = destination.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(destination.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(destination).as_posix())
    return archive


def _import_times(module: str, path: Path, bytecode: bool) -> tuple[int, int]:
    """(boto3, module) cumulative microseconds from one ``-X importtime`` run, boto3 imported first."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(path)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import boto3; import {module}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cumulative: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative_us, name = line.split("|")
        if not name.startswith("  ") and name.strip() in ("boto3", module):  # top-level imports only
            cumulative[name.strip()] = int(cumulative_us)
    return cumulative["boto3"], cumulative[module]


def cold_start(runs: int = 5) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        staged = Path(work) / "asset"
        archive = stage_asset(staged)
        figures["asset_zip_bytes"] = archive.stat().st_size
        figures["asset_files"] = sum(1 for p in staged.rglob("*") if p.is_file())
        compiled = Path(work) / "compiled"
        shutil.copytree(staged, compiled)
        compileall.compile_dir(compiled, quiet=1)
        for module in ("aggregator.handler", "publisher.handler"):
            for label, path, bytecode in (("as shipped (no .pyc)", staged, False), ("with .pyc", compiled, True)):
                samples = [_import_times(module, path, bytecode) for _ in range(runs)]
                boto3_us = statistics.median(s[0] for s in samples)
                module_us = statistics.median(s[1] for s in samples)
                figures[f"{module} {label}"] = {"boto3_ms": boto3_us / 1000, "handler_ms": module_us / 1000}
    return figures


# --- report ---------------------------------------------------------------------------------------------


def report(figures: PipelineFigures, cold: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    r = figures.requests
    writes = r.get("dynamodb:UpdateItem", 0)
    ssm = r.get("ssm:GetParameter", 0)
    imports = r.get("securityhub:BatchImportFindings", 0)
    periods = max(1, math.ceil(figures.seconds / figures.ssm_cache_seconds))
    rows = [
        ("DynamoDB write requests", figures.per_1000(writes), 1000, f"<= {GOAL_WRITES_PER_EVENT * 1000:.0f}"),
        ("  write request units (est.)", figures.per_1000(figures.write_request_units), 1000, ""),
        ("SSM GetParameter calls", figures.per_1000(ssm), 1000, ""),  # judged per cache period below
        ("BatchImportFindings calls", figures.per_1000(imports), 1000, f"<= {GOAL_IMPORT_CALLS_PER_1000}"),
        ("findings imported", figures.per_1000(figures.findings_sent), 1000, ""),
        ("aggregator invocations", figures.per_1000(figures.aggregator_invocations), 1000,
         f"<= {GOAL_AGGREGATOR_INVOCATIONS_PER_1000}"),
        ("publisher invocations", figures.per_1000(figures.publisher_invocations), 1000, ""),
        ("SQS requests (poller)", figures.per_1000(sum(n for k, n in r.items() if k.startswith("sqs:"))), 0, ""),
    ]  # fmt: skip
    lines.append(
        f"pipeline: {figures.events:,} matching events, {figures.findings_final} findings, "
        f"{figures.seconds:.0f} s on moto server"
    )
    lines.append(f"  {'per 1,000 events':32s} {'codewatch':>10s} {'naive':>8s}  goal")
    for label, value, naive, goal in rows:
        ok = ""
        if goal:
            limit = float(goal.split()[1])
            ok = "  ok" if value <= limit else "  MISSED"
        lines.append(f"  {label:32s} {value:10.1f} {naive:8d}  {goal}{ok}")
    ssm_ok = ssm <= periods
    lines.append(
        f"  SSM: {ssm} GetParameter in {figures.seconds:.0f} s, one container, cache {figures.ssm_cache_seconds} s "
        f"({periods} cache period(s)): {'ok' if ssm_ok else 'MISSED'}"
    )
    agg_ms = figures.aggregator_ms / figures.events
    pub_ms = figures.publisher_ms / max(figures.publisher_invocations, 1)
    lines.append(
        f"  function time on moto: aggregator {agg_ms:.1f} ms per event, publisher {pub_ms:.0f} ms per invocation"
    )
    ours, naive = monthly_cost_per_million(figures)
    lines.append(f"\ncost per million events (us-east-1 on-demand prices of {PRICES_DATE}; free tiers ignored)")
    lines.append(f"  {'':26s} {'codewatch':>10s} {'naive':>10s}")
    for item in ours:
        lines.append(f"  {item:26s} {ours[item]:10.3f} {naive[item]:10.3f}")
    lines.append(f"  {'total':26s} {sum(ours.values()):10.3f} {sum(naive.values()):10.3f}")
    if cold:
        lines.append(
            f"\ncold start: asset {cold['asset_zip_bytes'] / 1024:.0f} KiB zipped ({cold['asset_files']} files); "
            f"import time after `import boto3`, median of 5"
        )
        for key, value in cold.items():
            if isinstance(value, dict):
                share = value["handler_ms"] / value["boto3_ms"]
                verdict = "ok" if share <= GOAL_IMPORT_OVERHEAD else "MISSED"
                lines.append(
                    f"  {key:42s} boto3 {value['boto3_ms']:6.1f} ms  handler +{value['handler_ms']:5.1f} ms "
                    f"({share:4.0%}; goal <= {GOAL_IMPORT_OVERHEAD:.0%}: {verdict})"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Count the pipeline's AWS requests per event; cost; cold start.")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=CHUNK, help="events put on the bus between settles")
    parser.add_argument("--template", help="synthesized template (default: cdk.out, synthesized if absent)")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the import-time measurement")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "codewatch")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Codewatch")
    print(f"pipeline bench: {args.events:,} events through the demo pipeline on moto server...", flush=True)
    figures = run_pipeline(args.events, args.template, args.chunk)
    cold = None if args.no_cold_start else cold_start()
    print("\n".join(report(figures, cold)))
    if args.json:
        args.json.write_text(json.dumps({"pipeline": figures.__dict__, "cold_start": cold}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
