"""``codewatch findings``: list this detection's findings from Security Hub.

Filters go to the server (``GetFindings`` ``Filters``: generator, ``UpdatedAt``, severity, record state)
so a busy hub returns only our pages, and are applied again here: the emulator (moto) ignores
``Filters``, and a wrong server-side match must not show an operator another product's findings.

``format_findings_table`` is shared with ``codewatch demo``, which prints the same table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from codewatch.finding import GENERATOR_ID
from codewatch.sanitize import escape_controls
from codewatch.timeutil import format_time, format_time_ms, parse_duration, parse_time
from codewatch_cli.aws import CommandError, add_aws_options, client, command

PROG = "codewatch findings"
SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
DEFAULT_SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
PAGE_SIZE = 100  # GetFindings' maximum
DEFAULT_LIMIT = 100
MISSING = "-"
ELLIPSIS = "…"
# (column title, cell width limit). Titles repeat actor and functions, so they get a modest width;
# ``--format json`` carries every value whole.
TABLE_COLUMNS: tuple[tuple[str, int], ...] = (
    ("SEVERITY", 13),
    ("TITLE", 60),
    ("ACTOR", 64),
    ("SOURCE", 39),
    ("FUNCTIONS", 60),
    ("COUNT", 8),
    ("FIRST_SEEN", 20),
    ("LAST_SEEN", 20),
)


# ------------------------------------------------------------------------------------- filtering


def server_filters(since: datetime, until: datetime, severities: Sequence[str], archived: bool) -> dict[str, Any]:
    """``GetFindings`` filters: values of one field are ORed, fields are ANDed."""
    filters: dict[str, Any] = {
        "GeneratorId": [{"Value": GENERATOR_ID, "Comparison": "EQUALS"}],
        "UpdatedAt": [{"Start": format_time_ms(since), "End": format_time_ms(until)}],
        "SeverityLabel": [{"Value": label, "Comparison": "EQUALS"} for label in severities],
    }
    if not archived:
        filters["RecordState"] = [{"Value": "ACTIVE", "Comparison": "EQUALS"}]
    return filters


def wanted(finding: Mapping[str, Any], since: datetime, severities: Sequence[str], archived: bool) -> bool:
    """The same filters, client side."""
    if finding.get("GeneratorId") != GENERATOR_ID:
        return False
    if (finding.get("Severity") or {}).get("Label") not in severities:
        return False
    if not archived and finding.get("RecordState", "ACTIVE") != "ACTIVE":
        return False
    try:
        return parse_time(finding.get("UpdatedAt")) >= since
    except ValueError:
        return False


def _updated_at(finding: Mapping[str, Any]) -> datetime:
    try:
        return parse_time(finding.get("UpdatedAt"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def list_findings(
    securityhub: Any,
    *,
    since: datetime,
    severities: Sequence[str] = DEFAULT_SEVERITIES,
    archived: bool = False,
    limit: int | None = DEFAULT_LIMIT,
) -> tuple[list[dict[str, Any]], bool]:
    """``(findings newest first, more_available)``. Pages are fetched only until ``limit`` is reached."""
    now = datetime.now(UTC)
    paginator = securityhub.get_paginator("get_findings")
    pages = paginator.paginate(
        Filters=server_filters(since, now + timedelta(days=1), severities, archived),
        SortCriteria=[{"Field": "UpdatedAt", "SortOrder": "desc"}],
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    found: list[dict[str, Any]] = []
    more = False
    for page in pages:
        for finding in page.get("Findings", []):
            if not wanted(finding, since, severities, archived):
                continue
            if limit is not None and len(found) >= limit:
                more = True
                break
            found.append(finding)
        if more:
            break
    # The server sorts already; sorting again keeps the order right where it does not (moto).
    found.sort(key=_updated_at, reverse=True)
    return found, more


# ---------------------------------------------------------------------------------------- output


def _cell(value: object, limit: int) -> str:
    """Escaped (``codewatch.sanitize``), one line, cut to ``limit`` with a visible ellipsis."""
    if value is None or value == "":
        return MISSING
    text = escape_controls(str(value))
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _functions(value: str | None) -> str | None:
    """``codewatch/function_updated`` is a JSON list (its last item may say how many were cut)."""
    if value is None:
        return None
    try:
        names = json.loads(value)
    except ValueError:
        return value
    if not isinstance(names, list):
        return value
    return ",".join(str(name) for name in names) or None


def _row(finding: Mapping[str, Any]) -> list[str]:
    fields = finding.get("ProductFields") or {}
    values: list[object] = [
        (finding.get("Severity") or {}).get("Label"),
        finding.get("Title"),
        fields.get("codewatch/user_arn"),
        fields.get("codewatch/src_ip"),
        _functions(fields.get("codewatch/function_updated")),
        fields.get("codewatch/count"),
        fields.get("codewatch/firstTime") or finding.get("FirstObservedAt"),
        fields.get("codewatch/lastTime") or finding.get("LastObservedAt"),
    ]
    return [_cell(value, limit) for value, (_, limit) in zip(values, TABLE_COLUMNS, strict=True)]


def format_findings_table(findings: Iterable[Mapping[str, Any]]) -> str:
    """An aligned table (header line first, one line per finding, each ending with a newline)."""
    rows = [[title for title, _ in TABLE_COLUMNS], *(_row(finding) for finding in findings)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    lines = []
    for row in rows:
        # The last column is not padded: no trailing blanks.
        padded = [value.ljust(width) for value, width in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, row[-1]]) + "\n")
    return "".join(lines)


def iter_json_lines(findings: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """One ASFF finding per line, as ``GetFindings`` returned it. ``ensure_ascii``: no value can put control
    or bidi characters on a terminal; the JSON still decodes to the exact value."""
    for finding in findings:
        yield json.dumps(finding, ensure_ascii=True, separators=(",", ":"), default=str) + "\n"


# ------------------------------------------------------------------------------------------- CLI


def _since(text: str) -> datetime:
    """A duration back from now (``24h``, ``7d``) or an ISO-8601 UTC time."""
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        return parse_time(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"invalid --since {text!r}: use a duration such as 24h or 7d, or a time such as 2026-12-01T00:00:00Z"
        ) from None


def _severities(text: str) -> tuple[str, ...]:
    labels = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
    unknown = [label for label in labels if label not in SEVERITIES]
    if not labels or unknown:
        raise argparse.ArgumentTypeError(f"invalid severity {text!r}: use a comma list of {','.join(SEVERITIES)}")
    return labels


def _limit(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid limit {text!r}: use a positive integer")
    return int(text)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "findings",
        help="list codewatch's findings from Security Hub",
        description=(
            "List the Security Hub findings raised by codewatch (GeneratorId "
            f"{GENERATOR_ID}), newest first. Exit status: 0 on success, 2 on an error."
        ),
    )
    parser.add_argument(
        "--since",
        type=_since,
        default="24h",
        metavar="DURATION|TIME",
        help="findings updated since: a duration back from now (24h, 7d) or an ISO time (default: 24h)",
    )
    parser.add_argument(
        "--severity",
        type=_severities,
        default=",".join(DEFAULT_SEVERITIES),
        metavar="LABELS",
        help=f"comma list of severity labels (default: {','.join(DEFAULT_SEVERITIES)})",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    parser.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N findings (default: {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--include-archived", action="store_true", help="also list ARCHIVED findings (default: ACTIVE only)"
    )
    add_aws_options(parser)
    return parser


@command(PROG)
def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    securityhub = client(args, "securityhub")
    try:
        findings, more = list_findings(
            securityhub,
            since=args.since,
            severities=args.severity,
            archived=args.include_archived,
            limit=args.limit,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidAccessException":
            raise CommandError(
                f"Security Hub is not enabled in {securityhub.meta.region_name} for this account "
                "(enable it, or pass the --region codewatch is deployed in)"
            ) from None
        raise
    out = sys.stdout
    if args.format == "json":
        out.writelines(iter_json_lines(findings))
    else:
        out.write(format_findings_table(findings))
        out.flush()
        sys.stderr.write(
            f"{PROG}: {len(findings)} finding(s) updated since {format_time(args.since)}"
            + (f"; more exist beyond --limit {args.limit}" if more else "")
            + "\n"
        )
    return 0
