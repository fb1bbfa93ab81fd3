"""``codewatch allowlist``: read, validate and change the allowlist kept in an SSM parameter.

The detector fails open on a bad document, so a bad write silently turns suppression off (or, with a
too-wide entry, turns detection off). Hence every write here:

1. validates the exact text it will write (``codewatch.allowlist.parse_allowlist``) and its size;
2. guards against lost updates: SSM has no compare-and-swap, but every write gets the next version
   number. A write that lands at ``read version + 1`` had no concurrent writer. If it lands later, the
   versions in between were written concurrently and ours may have overwritten them: ``add``/``remove``
   merge those versions' changes (entry by entry, against the document they started from) and write
   again; ``set`` puts the other writer's document back and refuses, unless ``--force``;
3. reads the version back and validates it.

Documents are written minified with a fixed key order (entries keep their order), to save bytes of the
4 KB standard tier and keep history diffs stable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from codewatch.allowlist import EMPTY_DOCUMENT, ENTRY_FIELDS, MATCH_FIELDS, Allowlist, AllowlistError, parse_allowlist
from codewatch.sanitize import escape_controls
from codewatch.timeutil import format_time, parse_duration
from codewatch_cli.aws import CommandError, add_aws_options, client, command

PROG = "codewatch allowlist"
DEFAULT_PARAMETER = "/codewatch/allowlist"
STANDARD_LIMIT = 4096  # bytes, SSM standard tier
ADVANCED_LIMIT = 8192  # bytes, SSM advanced tier
STANDARD_WARN = 3500  # warn early: a couple more entries would not fit
ADVANCED_WARN = 7500
MAX_ATTEMPTS = 5  # writes per command when racing other writers
HISTORY_KEPT = 100  # SSM keeps the last 100 versions of a parameter
TIER_ADVICE = (
    "rerun with --tier Advanced (up to 8 KB; an advanced parameter is charged, about USD 0.05 a month, "
    "and can never be moved back to Standard), or remove expired and unneeded entries"
)
# ``add`` option -> match field.
MATCH_OPTIONS = (
    ("principal_arn", "--principal-arn", "GLOB"),
    ("src_ip", "--src-ip", "CIDR"),
    ("user_agent", "--user-agent", "GLOB"),
    ("function", "--function", "GLOB"),
    ("account", "--account", "ID"),
)


@dataclass(frozen=True, slots=True)
class Stored:
    """The parameter as read: ``text`` is ``None`` and ``version`` 0 when it does not exist."""

    text: str | None
    version: int
    tier: str = "Standard"
    modified_by: str | None = None
    modified_at: datetime | None = None


# ------------------------------------------------------------------------------------- documents


def canonical(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document with a fixed key order: ``version, entries``; entries ``id, reason, expires, match``;
    match fields in schema order. Call only on a validated document (no unknown keys to lose)."""
    entries = []
    for entry in document["entries"]:
        ordered = {name: entry[name] for name in ENTRY_FIELDS if name in entry and name != "match"}
        ordered["match"] = {name: list(entry["match"][name]) for name in MATCH_FIELDS if name in entry["match"]}
        entries.append(ordered)
    return {"version": document["version"], "entries": entries}


def encode(document: Mapping[str, Any]) -> str:
    # ensure_ascii=False: a non-ASCII character costs 2-4 UTF-8 bytes instead of a 6-byte escape.
    return json.dumps(canonical(document), ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> tuple[dict[str, Any], Allowlist]:
    """Parse and validate stored or file text; raises ``AllowlistError`` with every reason."""
    allowlist = parse_allowlist(text)  # validates JSON and schema, listing every problem
    return json.loads(text), allowlist


def size_check(text: str, tier: str, err: Any) -> None:
    """Refuse a value the tier cannot hold; warn when it is close to the limit."""
    size = len(text.encode("utf-8"))
    if tier == "Advanced":
        if size > ADVANCED_LIMIT:
            raise CommandError(
                f"the document is {size:,} bytes, over the advanced tier's {ADVANCED_LIMIT:,}: remove entries "
                "(expired ones first) or merge entries with wider globs; nothing was written"
            )
        if size > ADVANCED_WARN:
            err.write(f"{PROG}: warning: the document is {size:,} of {ADVANCED_LIMIT:,} bytes (advanced tier)\n")
        return
    if size > STANDARD_LIMIT:
        raise CommandError(
            f"the document is {size:,} bytes, over the standard tier's {STANDARD_LIMIT:,}: {TIER_ADVICE}; "
            "nothing was written"
        )
    if size > STANDARD_WARN:
        err.write(
            f"{PROG}: warning: the document is {size:,} of {STANDARD_LIMIT:,} bytes allowed on the standard tier; "
            f"before it fills up, {TIER_ADVICE}\n"
        )


def prepare(document: Mapping[str, Any], tier: str, err: Any) -> str:
    """The exact text to write, validated (schema and size) as written."""
    try:
        parse_allowlist(document)
        text = encode(document)
        parse_allowlist(text)
    except AllowlistError as error:
        raise CommandError(f"refusing to write an invalid allowlist: {error}; nothing was written") from None
    size_check(text, tier, err)
    return text


def merge_concurrent(base: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``base`` plus what each concurrent document changed relative to it, entry by entry.

    Each concurrent writer started from ``base`` (or a later version), so an id missing from its document
    that ``base`` had was removed by it, and an entry that differs from ``base`` was added or changed by
    it. Later documents win. This restores changes our own overwrite lost.
    """
    base_entries = {entry["id"]: entry for entry in base["entries"]}
    merged = dict(base_entries)
    for other in others:
        ids = {entry["id"] for entry in other["entries"]}
        for entry_id in base_entries.keys() - ids:
            merged.pop(entry_id, None)
        for entry in other["entries"]:
            if base_entries.get(entry["id"]) != entry:
                merged[entry["id"]] = entry
    return {"version": base["version"], "entries": list(merged.values())}


# ------------------------------------------------------------------------------------------ SSM


def read(ssm: Any, name: str) -> Stored:
    from botocore.exceptions import ClientError

    try:
        parameter = ssm.get_parameter(Name=name)["Parameter"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return Stored(None, 0)
        raise
    if parameter.get("Type") == "SecureString":
        # The aggregator reads the value as is (no decryption): a SecureString would fail open forever.
        raise CommandError(f"parameter {_show(name)} is a SecureString; the detector needs a String parameter")
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
    details = (described.get("Parameters") or [{}])[0]
    return Stored(
        text=parameter["Value"],
        version=int(parameter["Version"]),
        tier=details.get("Tier") or "Standard",
        modified_by=details.get("LastModifiedUser"),
        modified_at=details.get("LastModifiedDate") or parameter.get("LastModifiedDate"),
    )


def history(ssm: Any, name: str) -> list[dict[str, Any]]:
    """Every version SSM still keeps, oldest first."""
    versions: list[dict[str, Any]] = []
    for page in ssm.get_paginator("get_parameter_history").paginate(Name=name, WithDecryption=False):
        versions.extend(page.get("Parameters", []))
    return sorted(versions, key=lambda version: int(version["Version"]))


def put(ssm: Any, name: str, text: str, tier: str, *, exists: bool) -> int:
    """Write ``text``; returns the new version. Creating (``exists=False``) never overwrites: a concurrent
    creator makes it fail with ``ParameterAlreadyExists`` instead of being silently replaced."""
    request: dict[str, Any] = {"Name": name, "Value": text, "Type": "String", "Tier": tier, "Overwrite": exists}
    if not exists:
        request["Description"] = "codewatch allowlist (JSON); change it with `codewatch allowlist`"
    return int(ssm.put_parameter(**request)["Version"])


def read_back(ssm: Any, name: str, version: int, text: str) -> None:
    """The version just written must hold exactly ``text``, and be valid."""
    stored = ssm.get_parameter(Name=f"{name}:{version}")["Parameter"]["Value"]
    if stored != text:
        raise CommandError(f"read-back of {_show(name)} version {version} differs from what was written")
    try:
        parse_allowlist(stored)
    except AllowlistError as error:
        raise CommandError(f"read-back of {_show(name)} version {version} is invalid: {error}") from None


def _tier(args: argparse.Namespace, stored: Stored) -> str:
    requested = getattr(args, "tier", None)  # ``remove`` has no --tier: it keeps the current tier
    if stored.tier == "Advanced" and requested == "Standard":
        raise CommandError(f"{_show(args.parameter)} is an advanced parameter; SSM cannot move it back to Standard")
    return "Advanced" if "Advanced" in (requested, stored.tier) else "Standard"


def _created(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code == "ParameterAlreadyExists"


def update(
    ssm: Any,
    args: argparse.Namespace,
    change: Callable[[dict[str, Any], bool], dict[str, Any]],
    err: Any,
    *,
    create: bool,
) -> tuple[int, dict[str, Any]]:
    """Apply ``change(document, first_attempt)`` and write it, re-applying over concurrent writes.

    Returns ``(version written, document)``. ``change`` raises ``CommandError`` to refuse.
    """
    from botocore.exceptions import ClientError

    name = args.parameter
    stored = read(ssm, name)
    if stored.text is None and not create:
        raise CommandError(f"parameter {_show(name)} not found: nothing to change")
    if stored.text is None:
        base: dict[str, Any] = json.loads(json.dumps(EMPTY_DOCUMENT))  # a copy: never mutate the shared one
    else:
        try:
            base, _ = decode(stored.text)
        except AllowlistError as error:
            raise CommandError(
                f"the stored allowlist (version {stored.version}) is invalid, so it cannot be changed entry by "
                f"entry: {error}; replace it with `codewatch allowlist set FILE`"
            ) from None
    tier = _tier(args, stored)
    latest = stored.version  # the newest version this command knows of
    ours: set[int] = set()
    document = base
    refusal: CommandError | None = None
    for attempt in range(MAX_ATTEMPTS):
        try:
            new_document = change(document, attempt == 0)
            text = prepare(new_document, tier, err)
        except CommandError as error:
            if not ours:
                raise  # nothing of ours was written: nothing to repair
            # The change no longer applies over the concurrent ones (same id added, too big), but our first
            # write has overwritten them: put the merged document back, then refuse.
            refusal, new_document = error, document
            text = prepare(document, tier, err)
        try:
            version = put(ssm, name, text, tier, exists=latest > 0)
        except ClientError as error:
            if not _created(error):
                raise
            version = None  # someone else created it first: merge their document like any concurrent write
        if version is not None and version == latest + 1:
            read_back(ssm, name, version, text)
            if refusal is not None:
                raise CommandError(f"{refusal.message} (version {version} restores the concurrent changes)")
            return version, new_document
        if version is not None:
            ours.add(version)
        versions = history(ssm, name)
        concurrent = [v for v in versions if int(v["Version"]) > stored.version and int(v["Version"]) not in ours]
        others: list[dict[str, Any]] = []
        for other in concurrent:
            try:
                others.append(decode(other["Value"])[0])
            except AllowlistError:
                err.write(
                    f"{PROG}: warning: concurrent version {other['Version']} is invalid; its changes are ignored\n"
                )
        if attempt + 1 == MAX_ATTEMPTS:
            break
        who = ", ".join(sorted({_show(v.get("LastModifiedUser") or "unknown") for v in concurrent})) or "unknown"
        err.write(
            f"{PROG}: another writer ({who}) changed {_show(name)} at the same time; "
            f"re-applying this change over theirs (attempt {attempt + 2} of {MAX_ATTEMPTS})\n"
        )
        document = merge_concurrent(base, others)
        if versions:
            latest = int(versions[-1]["Version"])
            if versions[-1].get("Tier") == "Advanced":
                tier = "Advanced"  # moved up concurrently: SSM refuses a write that would move it back
    raise CommandError(
        f"{_show(name)} kept changing concurrently; gave up after {MAX_ATTEMPTS} writes. Check it with "
        "`codewatch allowlist show` and `history` (every version is kept) and retry"
    )


# --------------------------------------------------------------------------------------- commands


def _show(value: object) -> str:
    return escape_controls(str(value))


def _count(entries: Mapping[str, Any] | Sequence[Any]) -> str:
    """``1 entry``, ``3 entries``, for a document or a list of entries."""
    number = len(entries["entries"]) if isinstance(entries, Mapping) else len(entries)
    return f"{number} entr{'y' if number == 1 else 'ies'}"


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CommandError(f"cannot read {_show(path)}: {reason}") from None


def _summary_line(stored: Stored, text: str) -> str:
    limit = ADVANCED_LIMIT if stored.tier == "Advanced" else STANDARD_LIMIT
    when = format_time(stored.modified_at) if isinstance(stored.modified_at, datetime) else "?"
    return (
        f"version {stored.version} ({stored.tier} tier, {len(text.encode('utf-8')):,} of {limit:,} bytes), "
        f"last modified {when} by {_show(stored.modified_by or 'unknown')}"
    )


def _describe_entries(allowlist: Allowlist, now: datetime) -> list[str]:
    lines = []
    expired = allowlist.expired_ids(now)
    lines.append(f"{_count(allowlist.entries)}, {len(expired)} expired")
    for entry in allowlist.entries:
        if entry.expires is None:
            status = "no expiry"
        elif entry.expired(now):
            status = f"EXPIRED {format_time(entry.expires)} (ignored by the detector)"
        else:
            status = f"expires {format_time(entry.expires)}"
        fields = ", ".join(f"{name}={len(values)}" for name, values in entry.match.items())
        lines.append(f"  {_show(entry.id)}: {status}; match {fields}; reason: {_show(entry.reason)}")
    if expired:
        lines.append(f"remove expired entries with: codewatch allowlist remove {_show(expired[0])}")
    return lines


def _run_show(args: argparse.Namespace) -> int:
    ssm = client(args, "ssm")
    stored = read(ssm, args.parameter)
    if stored.text is None:
        raise CommandError(
            f"parameter {_show(args.parameter)} not found: create it with `codewatch allowlist set FILE` "
            "or `codewatch allowlist add ...` (the detector fails open without it)"
        )
    err = sys.stderr
    # The document goes to stdout, alone, so ``show > allowlist.json`` gives a file to edit and ``set``;
    # the summary goes to stderr.
    try:
        document, allowlist = decode(stored.text)
    except AllowlistError as error:
        try:
            print(json.dumps(json.loads(stored.text), indent=2, ensure_ascii=True))
        except ValueError:
            print(_show(stored.text))
        err.write(f"{PROG}: {_show(args.parameter)} {_summary_line(stored, stored.text)}\n")
        err.write(f"{PROG}: error: the stored allowlist is INVALID, so the detector ignores it (fails open): {error}\n")
        return 1
    # ensure_ascii: a value cannot move the cursor or forge lines on the operator's terminal.
    print(json.dumps(document, indent=2, ensure_ascii=True))
    err.write(f"{PROG}: {_show(args.parameter)} {_summary_line(stored, stored.text)}\n")
    for line in _describe_entries(allowlist, datetime.now(UTC)):
        err.write(f"{PROG}: {line}\n")
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    text = _read_file(args.file)
    try:
        _, allowlist = decode(text)
    except AllowlistError as error:
        sys.stderr.write(f"{PROG}: {_show(args.file)}: INVALID: {error}\n")
        return 1
    print(f"{_show(args.file)}: valid")
    for line in _describe_entries(allowlist, datetime.now(UTC)):
        print(line)
    size = len(encode(json.loads(text)).encode("utf-8"))
    print(f"{size:,} bytes as stored (standard tier holds {STANDARD_LIMIT:,}, advanced {ADVANCED_LIMIT:,})")
    return 0


def _run_set(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        document, _ = decode(_read_file(args.file))
    except AllowlistError as error:
        raise CommandError(f"refusing to write {_show(args.file)}: {error}; nothing was written") from None
    ssm = client(args, "ssm")
    name = args.parameter
    stored = read(ssm, name)
    tier = _tier(args, stored)
    text = prepare(document, tier, err)
    if args.if_version is not None and stored.version != args.if_version:
        raise CommandError(
            f"{_show(name)} is at version {stored.version}, not {args.if_version}: someone changed it since; "
            "review with `codewatch allowlist show` and retry; nothing was written"
        )
    if text == stored.text and tier == stored.tier:
        print(f"{_show(name)} already holds this document (version {stored.version}); nothing written")
        return 0
    from botocore.exceptions import ClientError

    try:
        version = put(ssm, name, text, tier, exists=stored.text is not None)
    except ClientError as error:
        if not _created(error):
            raise
        raise CommandError(
            f"someone else created {_show(name)} while this set ran; nothing was written. Review it with "
            "`codewatch allowlist show`, then retry, or pass --force to overwrite"
            if not args.force
            else f"someone else created {_show(name)} while this set ran; retry to overwrite it"
        ) from None
    if version != stored.version + 1:
        versions = {int(v["Version"]): v for v in history(ssm, name)}
        theirs = versions.get(version - 1, {})
        who = _show(theirs.get("LastModifiedUser") or "unknown")
        if not args.force:
            # Our write has already replaced theirs: put their document back, then refuse.
            restored = put(ssm, name, theirs["Value"], tier, exists=True) if theirs else None
            raise CommandError(
                f"someone else ({who}) changed {_show(name)} while this set ran (version {version - 1}); "
                f"your document was not kept"
                + (f" (version {restored} restores theirs)" if restored else "")
                + ". Review with `codewatch allowlist show`, then retry, or pass --force to overwrite"
            )
        err.write(
            f"{PROG}: warning: --force: overwrote a concurrent change by {who} (version {version - 1}, "
            "still in `codewatch allowlist history`)\n"
        )
    read_back(ssm, name, version, text)
    print(f"wrote {_show(name)} version {version}: {_count(document)}, {len(text.encode()):,} bytes")
    return 0


def _expires(text: str) -> str:
    """``--expires``: an ISO time, or a duration from now with a unit (``30d``, ``12h``)."""
    if text[-1:].lower() in ("s", "m", "h", "d") and text[:-1].isdigit():
        try:
            return format_time(datetime.now(UTC) + timedelta(seconds=parse_duration(text)))
        except ValueError:
            pass
    return text  # validated with the whole entry by ``parse_allowlist``


def _run_add(args: argparse.Namespace) -> int:
    entry: dict[str, Any] = {"id": args.id, "reason": args.reason}
    if args.expires:
        entry["expires"] = _expires(args.expires)
    entry["match"] = {name: getattr(args, name) for name, _, _ in MATCH_OPTIONS if getattr(args, name)}
    try:  # refuse a bad entry before any AWS call
        parse_allowlist({"version": 1, "entries": [entry]})
    except AllowlistError as error:
        hint = "" if entry["match"] else " (give at least one of --principal-arn, --src-ip, --user-agent, ...)"
        raise CommandError(f"refusing to add an invalid entry: {error}{hint}; nothing was written") from None

    def change(document: dict[str, Any], first: bool) -> dict[str, Any]:
        entries = list(document["entries"])
        ids = [existing["id"] for existing in entries]
        if entry["id"] in ids:
            if not args.replace:
                when = "" if first else " (added concurrently by someone else)"
                raise CommandError(f"entry {_show(entry['id'])!r} already exists{when}; pass --replace to overwrite it")
            entries[ids.index(entry["id"])] = entry
        else:
            entries.append(entry)
        return {"version": document["version"], "entries": entries}

    ssm = client(args, "ssm")
    version, document = update(ssm, args, change, sys.stderr, create=True)
    print(f"added entry {_show(entry['id'])!r} to {_show(args.parameter)}: version {version}, {_count(document)}")
    return 0


def _run_remove(args: argparse.Namespace) -> int:
    def change(document: dict[str, Any], first: bool) -> dict[str, Any]:
        entries = [entry for entry in document["entries"] if entry["id"] != args.id]
        if first and len(entries) == len(document["entries"]):
            known = ", ".join(_show(entry["id"]) for entry in document["entries"]) or "none"
            raise CommandError(f"no entry {_show(args.id)!r} in {_show(args.parameter)} (entries: {known})")
        # On a retry it may already be gone (removed concurrently): the merged document is still written,
        # to restore what our first write overwrote.
        return {"version": document["version"], "entries": entries}

    ssm = client(args, "ssm")
    version, document = update(ssm, args, change, sys.stderr, create=False)
    print(f"removed entry {_show(args.id)!r} from {_show(args.parameter)}: version {version}, {_count(document)} left")
    return 0


def _run_history(args: argparse.Namespace) -> int:
    ssm = client(args, "ssm")
    from botocore.exceptions import ClientError

    try:
        versions = history(ssm, args.parameter)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            raise CommandError(f"parameter {_show(args.parameter)} not found") from None
        raise
    rows = [("VERSION", "MODIFIED", "ENTRIES", "BYTES", "TIER", "USER")]
    for version in versions:
        try:
            entries = str(len(parse_allowlist(version["Value"]).entries))
        except AllowlistError:
            entries = "invalid"
        modified = version.get("LastModifiedDate")
        rows.append(
            (
                str(version["Version"]),
                format_time(modified) if isinstance(modified, datetime) else "?",
                entries,
                str(len(version["Value"].encode("utf-8"))),
                str(version.get("Tier") or "Standard"),
                _show(version.get("LastModifiedUser") or "unknown"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join([*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)), row[-1]]))
    sys.stderr.write(
        f"{PROG}: {len(versions)} version(s); SSM keeps the last {HISTORY_KEPT}. "
        f"See one with: aws ssm get-parameter --name '{_show(args.parameter)}:VERSION'\n"
    )
    return 0


@command(PROG)
def run(args: argparse.Namespace) -> int:
    return int(args.action(args))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "allowlist",
        help="show, validate and change the allowlist in SSM Parameter Store",
        description=(
            "Operate the allowlist kept in an SSM parameter. Every write validates the document first "
            "(nothing invalid is written), re-applies itself over concurrent changes, and reads the result "
            "back. Exit status: 0 on success, 1 for an invalid document (validate, show), 2 on any error."
        ),
    )
    actions = parser.add_subparsers(dest="allowlist_command", required=True, metavar="ACTION")

    aws_parent = argparse.ArgumentParser(add_help=False)
    aws_parent.add_argument(
        "--parameter", default=DEFAULT_PARAMETER, metavar="NAME", help=f"SSM parameter (default: {DEFAULT_PARAMETER})"
    )
    add_aws_options(aws_parent)
    tier_parent = argparse.ArgumentParser(add_help=False)
    tier_parent.add_argument(
        "--tier",
        choices=("Standard", "Advanced"),
        default=None,
        help="SSM tier: Standard holds 4 KB; Advanced 8 KB, charged, and permanent (default: keep the current one)",
    )

    show = actions.add_parser(
        "show", parents=[aws_parent], help="print the document (stdout) and a summary of its entries (stderr)"
    )
    show.set_defaults(action=_run_show)

    validate = actions.add_parser("validate", help="check a file locally (no AWS); exit 1 with every reason")
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(action=_run_validate)

    set_ = actions.add_parser("set", parents=[aws_parent, tier_parent], help="replace the document with FILE")
    set_.add_argument("file", metavar="FILE")
    set_.add_argument("--force", action="store_true", help="keep this document even over a concurrent change")
    set_.add_argument(
        "--if-version",
        type=int,
        default=None,
        metavar="N",
        help="write only if the parameter is still at version N (as `show` printed it)",
    )
    set_.set_defaults(action=_run_set)

    add = actions.add_parser(
        "add",
        parents=[aws_parent, tier_parent],
        help="add an entry (every match option given must hold; values within one option are alternatives)",
    )
    add.add_argument("--id", required=True, help="unique entry id")
    add.add_argument("--reason", required=True, help="why this activity is expected (required)")
    add.add_argument(
        "--expires", metavar="TIME", help="ISO-8601 UTC time (2027-01-31T00:00:00Z) or a duration from now (30d)"
    )
    for name, option, metavar in MATCH_OPTIONS:
        add.add_argument(option, dest=name, action="extend", nargs="+", default=None, metavar=metavar)
    add.add_argument("--replace", action="store_true", help="overwrite an existing entry with the same id")
    add.set_defaults(action=_run_add)

    remove = actions.add_parser("remove", parents=[aws_parent], help="remove the entry with this id")
    remove.add_argument("id", metavar="ID")
    remove.set_defaults(action=_run_remove)

    hist = actions.add_parser("history", parents=[aws_parent], help="list the versions SSM keeps (the last 100)")
    hist.set_defaults(action=_run_history)
    return parser
