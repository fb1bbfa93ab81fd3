"""Enrichment: what a responder needs beyond the seed's fields, and the risk score.

Everything here is derived from the record alone (no AWS calls), so the aggregator's hot path stays
one DynamoDB write per event.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from codewatch.records import CodeUpdate

SEED_RISK_SCORE = 63  # Splunk's risk-based alerting score for this detection (impact 70 x confidence 90)

# Each adjustment, with why. The finding lists the reasons that applied.
RISK_ADJUSTMENTS: dict[str, tuple[int, str]] = {
    "root-principal": (+20, "the account root user changed code: root should never do day-to-day work"),
    "pentest-user-agent": (+25, "the user agent names a penetration-testing distribution (Kali, Parrot, Pentoo)"),
    "long-term-key": (+5, "a long-term access key (AKIA) was used; stolen static keys are the usual way in"),
    "no-mfa-console": (+5, "a console session without MFA"),
    "via-cloudformation": (-15, "CloudFormation made the call on the caller's behalf, as a stack deployment does"),
    "dry-run": (-10, "a dry run validates permissions but changes no code"),
}

_PENTEST = re.compile(r"(?i)(?<![a-z])(kali|parrot|pentoo)(?![a-z])")
_IAC_TOOLS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("terraform", re.compile(r"(?i)terraform|hashicorp")),
    ("cloudformation", re.compile(r"(?i)cloudformation\.amazonaws\.com|aws-cloudformation")),
    ("cdk", re.compile(r"(?i)aws-cdk|\bcdk/")),
    ("sam", re.compile(r"(?i)aws-sam-cli|\bsam-cli")),
    ("pulumi", re.compile(r"(?i)pulumi")),
    ("serverless", re.compile(r"(?i)serverless/|serverless-framework|\bsls/")),
)
_CONSOLE = re.compile(r"(?i)^(console\.amazonaws\.com|signin\.amazonaws\.com|console\.[a-z0-9.-]*amazonaws)|^mozilla/")
# RFC 1918, carrier-grade NAT, loopback and link-local. Documentation ranges (TEST-NET) count as public,
# since that is what they stand for in examples and tests.
_PRIVATE_IPV4 = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16")
)
_SDK = re.compile(r"(?i)boto3/|botocore/|aws-sdk-|aws-sdk/|aws-sdk-go|aws-sdk-java|aws-sdk-js|aws-sdk-net|aws-sdk-rust")


def user_agent_class(user_agent: str | None) -> str:
    """``console``, ``aws-cli``, ``sdk``, ``iac/<tool>``, ``pentest/<distro>`` or ``unknown``.

    Penetration-testing distributions win over everything else: a Kali box running the AWS CLI is
    still a Kali box. IaC tools come next because their user agents also name the SDK they embed.
    """
    if not user_agent:
        return "unknown"
    pentest = _PENTEST.search(user_agent)
    if pentest:
        return f"pentest/{pentest.group(1).lower()}"
    for tool, pattern in _IAC_TOOLS:
        if pattern.search(user_agent):
            return f"iac/{tool}"
    if _CONSOLE.search(user_agent):
        return "console"
    if user_agent.lower().startswith("aws-cli/") or " aws-cli/" in user_agent.lower():
        return "aws-cli"
    if _SDK.search(user_agent):
        return "sdk"
    return "unknown"


def source_class(source_ip: str | None) -> str:
    """``aws-service``, ``ipv4-public``, ``ipv4-private``, ``ipv6``, ``missing`` or ``unparseable``.

    CloudTrail writes a service's DNS name (``cloudformation.amazonaws.com``) or ``AWS Internal`` when
    a service made the call.
    """
    if not source_ip:
        return "missing"
    if source_ip.endswith(".amazonaws.com") or source_ip == "AWS Internal":
        return "aws-service"
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return "unparseable"
    if address.version == 6:
        return "ipv6"
    return "ipv4-private" if any(address in network for network in _PRIVATE_IPV4) else "ipv4-public"


def via_cloudformation(event: CodeUpdate) -> bool:
    return (
        event.principal.invoked_by == "cloudformation.amazonaws.com"
        or event.src_ip == "cloudformation.amazonaws.com"
        or event.user_agent == "cloudformation.amazonaws.com"
    )


@dataclass(frozen=True, slots=True)
class Enrichment:
    user_agent_class: str
    source_class: str
    risk_score: int
    risk_reasons: tuple[str, ...]


def risk(event: CodeUpdate, ua_class: str) -> tuple[int, tuple[str, ...]]:
    """The seed's 63, moved by each documented adjustment that applies, bounded to 1..100."""
    reasons: list[str] = []
    if event.user_type == "Root":
        reasons.append("root-principal")
    if ua_class.startswith("pentest/"):
        reasons.append("pentest-user-agent")
    if event.principal.key_kind == "long-term":
        reasons.append("long-term-key")
    if ua_class == "console" and event.principal.mfa_authenticated is False:
        reasons.append("no-mfa-console")
    if via_cloudformation(event):
        reasons.append("via-cloudformation")
    if event.dry_run:
        reasons.append("dry-run")
    score = SEED_RISK_SCORE + sum(RISK_ADJUSTMENTS[reason][0] for reason in reasons)
    return max(1, min(100, score)), tuple(reasons)


def enrich(event: CodeUpdate) -> Enrichment:
    ua_class = user_agent_class(event.user_agent)
    score, reasons = risk(event, ua_class)
    return Enrichment(
        user_agent_class=ua_class,
        source_class=source_class(event.src_ip),
        risk_score=score,
        risk_reasons=reasons,
    )


def severity_label(score: int) -> str:
    """Security Hub's bands: 1–39 LOW, 40–69 MEDIUM, 70–89 HIGH, 90+ CRITICAL (0 is INFORMATIONAL)."""
    if score <= 0:
        return "INFORMATIONAL"
    if score < 40:
        return "LOW"
    if score < 70:
        return "MEDIUM"
    if score < 90:
        return "HIGH"
    return "CRITICAL"
