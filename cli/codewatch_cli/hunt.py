"""``codewatch hunt``: replay historical CloudTrail through the same detection code as the Lambda.

The path of a record: ``inputs`` finds the candidate records (files without the marker text are skipped
unparsed), ``codewatch.match.rule`` decides on the raw dict, and only the few matches are normalised,
checked against the allowlist and aggregated. Files are spread over worker processes in chunks; each
chunk returns a partial ``Aggregator``, merged in submission order, so output is the same however the
work was scheduled, and memory holds a bounded number of chunks plus the aggregates.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice
from typing import Any

from codewatch.aggregate import Aggregator
from codewatch.allowlist import Allowlist, AllowlistError, parse_allowlist
from codewatch.match import rule
from codewatch.pattern import PrincipalSelection, parse_principal_types
from codewatch.records import MalformedRecord, normalise
from codewatch.sanitize import escape_controls
from codewatch.timeutil import format_time, parse_duration
from codewatch_cli import output
from codewatch_cli.inputs import iter_candidates, iter_input_files

PROG = "codewatch hunt"
FILES_PER_TASK = 16  # CloudTrail files are ~10-30 KB compressed: enough per task to amortise pickling
IN_FLIGHT_PER_WORKER = 4  # bounds memory (results waiting to be merged) while keeping workers busy
ERRORS_SHOWN_PER_FILE = 20  # a garbage file must not bury the other reports


@dataclass(frozen=True, slots=True)
class ScanConfig:
    principals: PrincipalSelection
    window_seconds: int | None
    allowlist: Allowlist | None
    now: datetime


@dataclass(slots=True)
class ScanResult:
    """What scanning some files produced; results of different chunks merge into one."""

    aggregator: Aggregator
    files: int = 0
    matched: int = 0
    error_count: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    suppressed: Counter[str] = field(default_factory=Counter)

    def merge(self, other: ScanResult) -> None:
        self.aggregator.merge(other.aggregator)
        self.files += other.files
        self.matched += other.matched
        self.error_count += other.error_count
        self.suppressed.update(other.suppressed)


def scan_files(paths: Sequence[str], config: ScanConfig) -> ScanResult:
    """Scan some files; runs in a worker process (everything here pickles) or in-process."""
    result = ScanResult(Aggregator(config.window_seconds))
    for path in paths:
        result.files += 1
        errors_in_file = 0

        def report(place: str, reason: str, path: str = path) -> None:
            nonlocal errors_in_file
            result.error_count += 1
            errors_in_file += 1
            if errors_in_file <= ERRORS_SHOWN_PER_FILE:
                result.errors.append((place, reason))
            elif errors_in_file == ERRORS_SHOWN_PER_FILE + 1:
                result.errors.append((path, f"more errors in this file are not shown (over {ERRORS_SHOWN_PER_FILE})"))

        try:
            for place, record in iter_candidates(path, report):
                if not rule(record, config.principals):
                    continue
                try:
                    event = normalise(record)
                except MalformedRecord as error:
                    report(place, str(error))
                    continue
                if config.allowlist is not None:
                    entry_id = config.allowlist.decide(event, config.now)
                    if entry_id is not None:
                        result.suppressed[entry_id] += 1
                        continue
                result.aggregator.add(event)
                result.matched += 1
        except RecursionError:
            report(path, "nested too deeply")
        except MemoryError:
            report(path, "too large to hold in memory")
        except Exception as error:  # noqa: BLE001 - a bug on one file must not end a hunt over months of logs
            report(path, f"internal error ({type(error).__name__}: {escape_controls(str(error))[:200]})")
    return result


def _chunks(paths: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(paths)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _ignore_sigint() -> None:
    # Ctrl-C goes to the whole process group: the parent handles it; workers must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def scan(paths: Sequence[str], config: ScanConfig, jobs: int, err: Any) -> ScanResult:
    """Scan every input, reporting errors to ``err`` in input order as they are known."""
    total = ScanResult(Aggregator(config.window_seconds))

    def report(place: str, reason: str) -> None:
        total.error_count += 1
        _print_error(err, place, reason)

    def absorb(result: ScanResult) -> None:
        for place, reason in result.errors:
            _print_error(err, place, reason)
        total.merge(result)

    chunks = _chunks(iter_input_files(paths, report), FILES_PER_TASK)
    # Few files: a pool's start-up costs more than it saves.
    head = list(islice(chunks, 2))
    if jobs <= 1 or len(head) < 2:
        for chunk in chain(head, chunks):  # lazily: millions of paths need not be held
            absorb(scan_files(chunk, config))
        return total
    pending: deque[Future[ScanResult]] = deque()
    with ProcessPoolExecutor(max_workers=jobs, initializer=_ignore_sigint) as pool:
        try:
            for chunk in chain(head, chunks):  # lazily: millions of paths need not be held
                pending.append(pool.submit(scan_files, chunk, config))
                # Merge the oldest result first: output and error order do not depend on timing.
                while len(pending) >= jobs * IN_FLIGHT_PER_WORKER:
                    absorb(pending.popleft().result())
            while pending:
                absorb(pending.popleft().result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return total


def _print_error(err: Any, place: str, reason: str) -> None:
    err.write(f"{PROG}: error: {escape_controls(place)}: {reason}\n")


# ---------------------------------------------------------------------------------------------- CLI


def _principal_types(text: str) -> PrincipalSelection:
    try:
        return parse_principal_types(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _window(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid job count {text!r}: use a positive integer")
    return int(text)


def default_jobs() -> int:
    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "hunt",
        help="find Lambda UpdateFunctionCode calls in historical CloudTrail logs",
        description=(
            "Replay CloudTrail logs through codewatch's detection and print one aggregate per "
            "src_ip, user_arn, user_agent, user_type, eventName and aws_account_id (and window). "
            "Reads CloudTrail log files as delivered to S3 ({'Records': [...]}), JSON lines of records or "
            "of EventBridge envelopes, and JSON arrays of either; any of them gzip-compressed. "
            "Exit status: 0 on success, 1 if some input could not be read, 2 on a usage error."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders read recursively")
    parser.add_argument(
        "--principal-types",
        type=_principal_types,
        default="default",
        metavar="all|default|T1,T2...",
        help="userIdentity.type values to cover (default: every type except AWSService)",
    )
    parser.add_argument(
        "--window", type=_window, default=None, metavar="DURATION", help="also group by tumbling window, e.g. 60m"
    )
    parser.add_argument("--allowlist", metavar="FILE", help="suppress events an allowlist document (JSON) matches")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    parser.add_argument(
        "--jobs", type=_jobs, default=None, metavar="N", help="worker processes (default: up to 2, one per CPU)"
    )
    return parser


def load_allowlist(path: str) -> Allowlist:
    """Raises ``AllowlistError`` (the reason) for an unreadable or invalid file."""
    try:
        with open(path, "rb") as stream:
            text = stream.read()
    except OSError as error:
        raise AllowlistError(f"cannot read {escape_controls(path)}: {(error.strerror or str(error)).lower()}") from None
    return parse_allowlist(text)


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    principals: PrincipalSelection = args.principal_types  # argparse applies ``type`` to the string default too
    now = datetime.now(UTC)
    allowlist = None
    if args.allowlist is not None:
        try:
            allowlist = load_allowlist(args.allowlist)
        except AllowlistError as error:
            err.write(f"{PROG}: error: invalid allowlist {escape_controls(args.allowlist)}: {error}\n")
            return 2
        for entry in allowlist.entries:
            if entry.expired(now):
                expired_at = format_time(entry.expires) if entry.expires else "?"
                err.write(f"{PROG}: allowlist entry {escape_controls(entry.id)!r} expired {expired_at}; ignored\n")
    config = ScanConfig(principals=principals, window_seconds=args.window, allowlist=allowlist, now=now)
    try:
        result = scan(args.paths, config, args.jobs or default_jobs(), err)
    except BrokenProcessPool:
        # A worker was killed (out of memory, a signal): its chunk's results are lost, so say so plainly.
        err.write(f"{PROG}: error: a worker process died (out of memory?); try --jobs 1\n")
        return 1

    rows = list(result.aggregator.rows())
    if args.format == "json":
        output.write_json(rows, sys.stdout)
    else:
        output.write_table(rows, sys.stdout)
    sys.stdout.flush()
    for entry_id, count in sorted(result.suppressed.items()):
        err.write(f"{PROG}: allowlist entry {escape_controls(entry_id)!r} suppressed {count} event(s)\n")
    if args.format == "table":
        err.write(
            f"{PROG}: {result.files} file(s) read, {result.matched} matching event(s) in {len(rows)} aggregate(s), "
            f"{sum(result.suppressed.values())} suppressed, {result.error_count} error(s)\n"
        )
    return 1 if result.error_count else 0
