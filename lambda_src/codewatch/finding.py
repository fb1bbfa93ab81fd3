"""The Security Hub finding (ASFF) for one window item: a pure function, no AWS calls.

One finding per aggregation key and window. Its ``Id`` is derived from the item's key, so every later
event in the window re-imports the same finding with a newer ``UpdatedAt`` and it is updated in place
instead of adding to a flood.

Every string that can carry attacker-controlled text (user agent, ARNs, function names, IP field) is
escaped (``codewatch.sanitize``) and cut to its ASFF limit with a marker. Limits are counted in UTF-16
code units, not code points: Security Hub is a Java service, and an emoji counts twice there.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from codewatch.asff import DOCUMENTED_COUNTS, DOCUMENTED_LENGTHS, SCHEMA_VERSION, utf16_len
from codewatch.enrich import RISK_ADJUSTMENTS, severity_label
from codewatch.records import parse_function_arn
from codewatch.sanitize import escape_controls, safe_text, truncate
from codewatch.timeutil import format_time
from codewatch.window_item import WindowSummary

PRODUCT_NAME = "codewatch"
COMPANY_NAME = "codewatch"
GENERATOR_ID = "codewatch-lambda-updatefunctioncode"
FINDING_ID_PREFIX = "codewatch/lambda-code-update"
SPLUNK_DETECTION_ID = "211b80d3-6340-4345-11ad-212bf3d0d111"
DETECTION_NAME = "AWS Lambda UpdateFunctionCode"
RUNBOOK_URL = "https://github.com/codewatch-project/codewatch#runbook-responding-to-a-codewatch-finding"
CONFIDENCE = 90
CRITICALITY = 70
FINDING_TYPES = (
    "TTPs/Execution/T1204-User Execution",
    "Unusual Behaviors/User/Lambda Function Code Update",
)
SEED_MESSAGE = "User {user_arn} is attempting to update the lambda function code of {functions} from this IP {src_ip}"

# ASFF limits, from the validator's tables (AWS Security Hub API reference, AwsSecurityFinding).
TITLE_LIMIT = DOCUMENTED_LENGTHS["$.Title"][1]
DESCRIPTION_LIMIT = DOCUMENTED_LENGTHS["$.Description"][1]
ID_LIMIT = DOCUMENTED_LENGTHS["$.Id"][1]
RESOURCE_LIMIT = DOCUMENTED_COUNTS["$.Resources"][1]
RESOURCE_ID_LIMIT = 512  # not documented for Resource.Id; ARNs are far shorter, so bounding it costs nothing
RESOURCE_REGION_LIMIT = DOCUMENTED_LENGTHS["$.Resources[].Region"][1]
OTHER_VALUE_LIMIT = DOCUMENTED_LENGTHS["$.Resources[].Details.Other{}"][1]
PRODUCT_FIELD_VALUE_LIMIT = DOCUMENTED_LENGTHS["$.ProductFields{}"][1]
RECOMMENDATION_LIMIT = DOCUMENTED_LENGTHS["$.Remediation.Recommendation.Text"][1]
API_LIMIT = DOCUMENTED_LENGTHS["$.Action.AwsApiCallAction.Api"][1]
PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-us-iso", "aws-us-iso-b")

# Hunt-row fields in ``codewatch/<name>`` ProductFields, in the hunt JSON's order.
HUNT_FIELDS = (
    "src_ip",
    "user_arn",
    "user_agent",
    "user_type",
    "eventName",
    "aws_account_id",
    "count",
    "firstTime",
    "lastTime",
    "function_updated",
    "window_start",
    "window_end",
)

# Enrichment facts carried as JSON lists in ProductFields (annotation key -> fact name in the window item).
ENRICHMENT_FIELDS = (
    ("code/sha256", "code_sha256"),
    ("code/sources", "code_sources"),
    ("code/published_versions", "published_versions"),
    ("actor/ua_class", "ua_classes"),
    ("actor/source_class", "source_classes"),
    ("actor/key_kinds", "key_kinds"),
    ("actor/session_issuers", "session_issuers"),
    ("actor/invoked_by", "invoked_by"),
    ("actor/mfa", "mfa"),
    ("event/regions", "regions"),
)

STATIC_ANNOTATIONS = {
    "detection/name": DETECTION_NAME,
    "detection/splunk_id": SPLUNK_DETECTION_ID,
    "mitre/technique": "T1204 User Execution",
    "mitre/tactic": "TA0002 Execution",
    "kill_chain": "Actions on Objectives",
    "nist_csf": "PR.DS, PR.AC, DE.CM",
    "cis_controls": "CIS 13",
}

RECOMMENDATION = (
    "Compare the new CodeSha256 and code source with your release artifacts and check the principal, its "
    "session issuer and invokedBy. If the change is not a known deploy: save the current code for forensics, "
    "roll back to the last known-good version, revoke the credentials used, and hunt for the actor's other "
    "actions. See the runbook."
)


_VISIBLE = re.compile(r"\S")


def fit(value: object, limit: int) -> str:
    """``safe_text`` whose result also fits ``limit`` in UTF-16 code units (astral characters count twice).

    Every ASFF string must contain a non-space character (pattern ``.*\\S.*``), so a blank value is written
    with each character as ``\\uXXXX`` (an empty one as ``(empty)``): visible, and still the logged value.
    """
    text = value if isinstance(value, str) else str(value)
    if not _VISIBLE.search(text):
        text = "".join(f"\\u{ord(char):04x}" for char in text) or "(empty)"
    budget = limit
    result = safe_text(text, budget)
    while utf16_len(result) > limit and budget > 0:
        budget -= utf16_len(result) - limit
        result = safe_text(text, max(budget, 0))
    return result


def json_list(values: Iterable[str], limit: int = PRODUCT_FIELD_VALUE_LIMIT, item_limit: int = 512) -> str:
    """A JSON list that stays valid JSON within ``limit``: whole items are dropped from the end and a last
    element says how many. JSON escapes C0 controls itself; ``escape_controls`` then writes the rest (DEL, C1,
    bidi overrides, lone surrogates) as ``\\uXXXX`` escapes, which decode back to the logged value. An item
    longer than ``item_limit`` is cut with a marker first."""
    items = list(values)
    encoded = [escape_controls(json.dumps(truncate(item, item_limit), ensure_ascii=False)) for item in items]
    total = 2  # the brackets
    kept = 0
    for index, text in enumerate(encoded):
        more = len(items) - index - 1
        # Room for the marker element, unless this item is the last one and nothing would be dropped.
        reserve = utf16_len(_marker(more)) + 2 if more else 0
        cost = utf16_len(text) + (2 if kept else 0)
        if total + cost + reserve > limit:
            break
        total += cost
        kept += 1
    parts = encoded[:kept]
    if kept < len(items):
        parts.append(_marker(len(items) - kept))
    return "[" + ", ".join(parts) + "]"


def _marker(dropped: int) -> str:
    return json.dumps(f"…[truncated: {dropped} more items]", ensure_ascii=False)


def summarise(names: Sequence[str], limit: int) -> str:
    """``a, b and 3 more`` within ``limit`` characters, for titles and descriptions."""
    if not names:
        return "(none logged)"
    shown: list[str] = []
    for index, name in enumerate(names):
        candidate = ", ".join([*shown, fit(name, 80)])
        rest = len(names) - index - 1
        suffix = f" and {rest} more" if rest else ""
        if len(candidate) + len(suffix) > limit and shown:
            break
        shown.append(fit(name, 80))
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


def finding_id(summary: WindowSummary) -> str:
    """Stable per key and window: ``pk`` already hashes the whole aggregation key (account included)."""
    return fit(f"{FINDING_ID_PREFIX}/{summary.pk}/{format_time(summary.window_start)}", ID_LIMIT)


def product_arn(partition: str, region: str, account_id: str) -> str:
    return f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"


def _shown(value: str | None, limit: int) -> str:
    return fit(value, limit) if value else "(none logged)"


def _ipv4(value: str | None) -> str | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return str(address) if address.version == 4 else None


def _timestamps(summary: WindowSummary) -> tuple[str, str]:
    first = summary.first_time or summary.window_start
    last = summary.last_time or first
    return format_time(first), format_time(last)


def hunt_product_fields(summary: WindowSummary) -> dict[str, str]:
    """The hunt JSON row as ``codewatch/<name>`` fields: logged values, controls escaped, numbers as decimal
    strings, nulls left out, over-long values cut with a marker (lists stay valid JSON)."""
    row = summary.hunt_row()
    fields: dict[str, str] = {}
    for name in HUNT_FIELDS:
        value = row.get(name)
        if value is None:
            continue
        if name == "function_updated":
            fields[f"codewatch/{name}"] = json_list(value)
        elif isinstance(value, int):
            fields[f"codewatch/{name}"] = str(value)
        else:
            fields[f"codewatch/{name}"] = fit(value, PRODUCT_FIELD_VALUE_LIMIT)
    return fields


def _lambda_resource(arn: str, *, single: bool, summary: WindowSummary) -> dict[str, Any]:
    parts = parse_function_arn(arn) or {}
    details: dict[str, Any] = {"FunctionName": fit(parts.get("name") or arn, 256)}
    # The item keeps enrichment as sets, not per function, so a code hash or version can only be
    # attributed to a function when the window touched exactly one function and saw exactly one value.
    hashes, versions = summary.values("code_sha256"), summary.values("published_versions")
    if single and len(hashes) == 1:
        details["CodeSha256"] = fit(hashes[0], 256)
    if single and len(versions) == 1:
        details["Version"] = fit(versions[0], 64)
    resource: dict[str, Any] = {
        "Type": "AwsLambdaFunction",
        "Id": fit(arn, RESOURCE_ID_LIMIT),
        "ResourceRole": "Target",
        "Details": {"AwsLambdaFunction": details},
    }
    if parts.get("partition") in PARTITIONS:
        resource["Partition"] = parts["partition"]
    region = parts.get("region")
    if region and len(region) <= RESOURCE_REGION_LIMIT:
        resource["Region"] = region
    return resource


def _fallback_resource(summary: WindowSummary, partition: str) -> dict[str, Any]:
    """No function ARN could be resolved: name the function (or say it is unknown) in an ``Other`` resource."""
    names = summary.function_updated
    account = summary.key.aws_account_id
    other: dict[str, str] = {"FunctionNames": json_list(names, OTHER_VALUE_LIMIT, 256)}
    if account:
        other["AccountId"] = fit(account, 64)
    label = names[0] if names else "unknown-function"
    return {
        "Type": "Other",
        "Id": fit(f"lambda-function:{account or 'unknown-account'}:{label}", RESOURCE_ID_LIMIT),
        "Partition": partition if partition in PARTITIONS else "aws",
        "ResourceRole": "Target",
        "Details": {"Other": other},
    }


def resources(summary: WindowSummary, partition: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Up to 32 ``AwsLambdaFunction`` resources, and the ARNs that did not fit."""
    arns = sorted(summary.values("function_arns"))
    if not arns:
        return [_fallback_resource(summary, partition)], []
    single = len(arns) == 1
    kept = [_lambda_resource(arn, single=single, summary=summary) for arn in arns[:RESOURCE_LIMIT]]
    return kept, arns[RESOURCE_LIMIT:]


def _risk_text(summary: WindowSummary) -> str:
    reasons = summary.values("risk_reasons")
    if not reasons:
        return "no adjustment applied"
    texts = []
    for reason in reasons:
        delta, why = RISK_ADJUSTMENTS.get(reason, (0, "unrecognised adjustment"))
        texts.append(f"{fit(reason, 40)} ({delta:+d}: {why})")
    return "; ".join(texts)


def _description(summary: WindowSummary, omitted: Sequence[str]) -> str:
    key = summary.key
    first, last = _timestamps(summary)
    # Each attacker-controlled part has its own budget, so the message and the fail-open notice always
    # survive; only the tail (user agent, risk detail) can be cut by the final limit.
    message = SEED_MESSAGE.format(
        user_arn=_shown(key.user_arn, 200),
        functions=summarise(summary.function_updated, 200),
        src_ip=_shown(key.src_ip, 64),
    )
    parts = [message + "."]
    errors = summary.values("allowlist_errors")
    if errors:
        parts.append(
            "ALLOWLIST UNAVAILABLE: the allowlist could not be applied "
            f"({fit('; '.join(errors), 160)}), so the detector failed open and raised this finding "
            "without checking it."
        )
    parts.append(
        f"{summary.count} {fit(key.eventName, 64)} call(s) by {_shown(key.user_type, 32)} in account "
        f"{_shown(key.aws_account_id, 16)} between {first} and {last} "
        f"(window {format_time(summary.window_start)} to {format_time(summary.window_end)})."
    )
    if omitted:
        parts.append(f"{len(omitted)} more function(s) beyond the {RESOURCE_LIMIT} listed as resources.")
    parts.append(f"Risk {summary.risk_score} ({severity_label(summary.risk_score)}): {_risk_text(summary)}.")
    parts.append(f"User agent: {_shown(key.user_agent, 200)}.")
    return fit(" ".join(parts), DESCRIPTION_LIMIT)


def _title(summary: WindowSummary) -> str:
    key = summary.key
    functions = summary.function_updated
    target = fit(functions[0], 48) if len(functions) == 1 else f"{len(functions)} functions"
    # The seed's own message, with budgets that fit the 256-character title in all but freak cases.
    return fit(
        SEED_MESSAGE.format(user_arn=_shown(key.user_arn, 90), functions=target, src_ip=_shown(key.src_ip, 45)),
        TITLE_LIMIT,
    )


def _product_fields(summary: WindowSummary, omitted: Sequence[str]) -> dict[str, str]:
    fields = hunt_product_fields(summary)
    fields.update(STATIC_ANNOTATIONS)
    fields["risk/score"] = str(summary.risk_score)
    fields["risk/reasons"] = json_list(summary.values("risk_reasons"))
    for annotation, attribute in ENRICHMENT_FIELDS:
        values = summary.values(attribute)
        if values:
            fields[annotation] = json_list(values)
    arns = summary.values("function_arns")
    if arns:
        fields["resources/function_arns"] = json_list(sorted(arns))
    if omitted:
        fields["resources/omitted_count"] = str(len(omitted))
    suppressed = summary.values("suppressed_by")
    if suppressed:
        fields["allowlist/suppressed_by"] = json_list(suppressed)
    errors = summary.values("allowlist_errors")
    fields["allowlist/status"] = "unavailable: failed open" if errors else "applied"
    if errors:
        fields["allowlist/errors"] = json_list(errors)
    fields["codewatch_item/key"] = fit(f"{summary.pk} {summary.sk}", 256)
    return fields


def _action(summary: WindowSummary) -> dict[str, Any]:
    key = summary.key
    first, last = _timestamps(summary)
    call: dict[str, Any] = {
        "Api": fit(key.eventName, API_LIMIT),
        "ServiceName": "lambda.amazonaws.com",
        "FirstSeen": first,
        "LastSeen": last,
    }
    ipv4 = _ipv4(key.src_ip)
    if ipv4:
        call["CallerType"] = "remoteip"
        call["RemoteIpDetails"] = {"IpAddressV4": ipv4}
    elif key.src_ip and key.src_ip.endswith(".amazonaws.com"):
        # CloudTrail logs a service's DNS name as the source when a service made the call.
        call["CallerType"] = "domain"
        call["DomainDetails"] = {"Domain": fit(key.src_ip, 128)}
    return {"ActionType": "AWS_API_CALL", "AwsApiCallAction": call}


def build_finding(
    summary: WindowSummary,
    *,
    account_id: str,
    region: str,
    partition: str = "aws",
    created_at: str,
    updated_at: str,
    runbook_url: str = RUNBOOK_URL,
) -> dict[str, Any]:
    """The ASFF finding for ``summary``, to import into ``account_id`` in ``region``.

    ``account_id`` is the account the finding is imported into (Security Hub refuses other accounts from a
    custom provider); the account where the code changed is in ``Resources`` and ``ProductFields``.
    """
    first, last = _timestamps(summary)
    label = severity_label(summary.risk_score)
    types = list(FINDING_TYPES)
    found, omitted = resources(summary, partition)
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(summary),
        "ProductArn": product_arn(partition, region, account_id),
        "ProductName": PRODUCT_NAME,
        "CompanyName": COMPANY_NAME,
        "Region": region,
        "GeneratorId": GENERATOR_ID,
        "AwsAccountId": account_id,
        "Types": types,
        "FirstObservedAt": first,
        "LastObservedAt": last,
        "CreatedAt": created_at,
        "UpdatedAt": updated_at,
        "Severity": {"Label": label, "Original": str(summary.risk_score)},
        "Confidence": CONFIDENCE,
        "Criticality": CRITICALITY,
        "FindingProviderFields": {
            "Severity": {"Label": label, "Original": str(summary.risk_score)},
            "Types": list(types),
            "Confidence": CONFIDENCE,
            "Criticality": CRITICALITY,
        },
        "Title": _title(summary),
        "Description": _description(summary, omitted),
        "Remediation": {"Recommendation": {"Text": fit(RECOMMENDATION, RECOMMENDATION_LIMIT), "Url": runbook_url}},
        "ProductFields": _product_fields(summary, omitted),
        "Resources": found,
        "Action": _action(summary),
        "RecordState": "ACTIVE",
    }
