"""Parse the three input shapes into CloudTrail records, and normalise a record into a ``CodeUpdate``.

Inputs, as they occur in the wild:
- a raw CloudTrail record (a JSON object with ``eventName``);
- a CloudTrail log file as delivered to S3: ``{"Records": [...]}``;
- an EventBridge envelope with ``detail-type: "AWS API Call via CloudTrail"`` and the record in ``detail``.

Normalisation absorbs what varies between CloudTrail versions and tools: version-suffixed event names,
``publish``/``dryRun`` as strings or booleans, ``functionName`` as a name, a partial or full ARN,
``fullyQualifiedArn``, missing ``userAgent``/``sourceIPAddress``/``arn``, and ``responseElements: null``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from codewatch.pattern import DETAIL_TYPE
from codewatch.timeutil import parse_time

EARLIEST_EVENT_YEAR, LATEST_EVENT_YEAR = 2000, 9998


class MalformedRecord(ValueError):
    """A record that cannot be read; the message says why, without echoing attacker-controlled values."""


@dataclass(frozen=True, slots=True)
class Principal:
    type: str | None
    arn: str | None
    account_id: str | None
    user_name: str | None
    access_key_id: str | None
    key_kind: str | None  # "long-term" (AKIA), "temporary" (ASIA), or None
    mfa_authenticated: bool | None
    session_issuer_arn: str | None
    session_issuer_type: str | None
    invoked_by: str | None


@dataclass(frozen=True, slots=True)
class CodeSource:
    kind: str  # "s3", "image" or "zip"
    s3_bucket: str | None = None
    s3_key: str | None = None
    s3_object_version: str | None = None
    image_uri: str | None = None

    def describe(self) -> str:
        if self.kind == "s3":
            version = f"?versionId={self.s3_object_version}" if self.s3_object_version else ""
            return f"s3://{self.s3_bucket or '?'}/{self.s3_key or '?'}{version}"
        if self.kind == "image":
            return f"image:{self.image_uri}"
        return "zip:inline"


@dataclass(frozen=True, slots=True)
class CodeUpdate:
    """One normalised Lambda API call. Key fields keep the logged values; ``None`` where absent."""

    event_id: str | None
    event_time: datetime
    event_name: str
    event_source: str
    error_code: str | None
    src_ip: str | None
    user_arn: str | None
    user_agent: str | None
    user_type: str | None
    account_id: str | None
    region: str | None
    function_name: str | None
    function_arn: str | None
    publish: bool | None
    dry_run: bool | None
    code_sha256: str | None
    published_version: str | None
    code_source: CodeSource
    principal: Principal
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)


def event_identity(event: CodeUpdate) -> str:
    """CloudTrail's ``eventID``; a record without one is identified by a hash of its canonical JSON,
    which is just as stable under redelivery."""
    if event.event_id:
        return event.event_id
    canonical = json.dumps(event.raw, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def identity_digest(event: CodeUpdate) -> bytes:
    """The first 8 bytes of SHA-256 of the event's identity: what deduplication compares."""
    return hashlib.sha256(event_identity(event).encode("utf-8", "surrogatepass")).digest()[:8]


def is_envelope(obj: Mapping[str, Any]) -> bool:
    return "detail" in obj and "detail-type" in obj


def iter_records(document: Any) -> Iterator[tuple[int | None, Any]]:
    """Yield ``(index, record)`` for each record in any of the three shapes.

    ``index`` is the position within a ``Records`` array, else ``None``. Raises ``MalformedRecord``
    when the document is none of the shapes.
    """
    if not isinstance(document, Mapping):
        raise MalformedRecord(f"expected a JSON object, got {type(document).__name__}")
    if "Records" in document:
        records = document["Records"]
        if not isinstance(records, list):
            raise MalformedRecord(f"'Records' is {type(records).__name__}, expected a list")
        yield from enumerate(records)
    elif is_envelope(document):
        yield None, unwrap_envelope(document)
    else:
        yield None, document


def unwrap_envelope(envelope: Mapping[str, Any]) -> Any:
    detail_type = envelope.get("detail-type")
    if detail_type != DETAIL_TYPE:
        raise MalformedRecord(
            f"EventBridge envelope has detail-type {_describe(detail_type)}, expected {DETAIL_TYPE!r}"
        )
    return envelope["detail"]


def _describe(value: object) -> str:
    return repr(value) if isinstance(value, str) and len(value) <= 64 and value.isprintable() else type(value).__name__


def _optional_str(record: Mapping[str, Any], key: str, where: str = "") -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedRecord(f"{where}{key} is {type(value).__name__}, expected a string")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise MalformedRecord(f"{where} is {type(value).__name__}, expected an object")


def parse_flag(value: object) -> bool | None:
    """``publish``/``dryRun``: older records log ``"true"``/``"false"`` strings, newer ones booleans."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


_FUNCTION_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)
_PARTIAL_ARN = re.compile(r"^(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$")


def partition_for(region: str | None) -> str:
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def parse_function_arn(arn: str) -> dict[str, str | None] | None:
    """Split a Lambda function ARN into partition, region, account, name and qualifier, or ``None``."""
    found = _FUNCTION_ARN.match(arn)
    return found.groupdict() if found else None


def resolve_function_arn(
    function_name: str | None,
    request: Mapping[str, Any],
    response: Mapping[str, Any],
    account_id: str | None,
    region: str | None,
) -> str | None:
    """The unqualified ARN of the function changed, from the best evidence the record holds."""
    candidates: list[str] = []
    response_arn = response.get("functionArn")
    if isinstance(response_arn, str):
        candidates.append(response_arn)
    if function_name:
        candidates.append(function_name)
    for candidate in candidates:
        parts = parse_function_arn(candidate)
        if parts:
            return f"arn:{parts['partition']}:lambda:{parts['region']}:{parts['account']}:function:{parts['name']}"
    qualified = request.get("fullyQualifiedArn")
    if isinstance(qualified, Mapping):
        prefix = qualified.get("arnPrefix") if isinstance(qualified.get("arnPrefix"), Mapping) else {}
        relative = qualified.get("relativeId") if isinstance(qualified.get("relativeId"), Mapping) else {}
        name = relative.get("functionName")
        if isinstance(name, str) and name:
            # Only strings count: a malformed prefix must not crash parsing or leak "None"/lists into the ARN.
            arn_region = _str_or(prefix.get("region"), region)
            arn_account = _str_or(prefix.get("account"), account_id)
            partition = _str_or(prefix.get("partition"), partition_for(arn_region))
            if arn_region and arn_account:
                return f"arn:{partition}:lambda:{arn_region}:{arn_account}:function:{name}"
    if function_name:
        partial = _PARTIAL_ARN.match(function_name)
        name = partial.group("name") if partial else function_name.split(":")[0]
        account = partial.group("account") if partial else account_id
        if region and account and name:
            return f"arn:{partition_for(region)}:lambda:{region}:{account}:function:{name}"
    return None


def _str_or(value: object, default: str | None) -> str | None:
    return value if isinstance(value, str) and value else default


def _code_source(request: Mapping[str, Any], response: Mapping[str, Any]) -> CodeSource:
    image_uri = request.get("imageUri")
    if isinstance(image_uri, str) and image_uri:
        return CodeSource(kind="image", image_uri=image_uri)
    bucket, key = request.get("s3Bucket"), request.get("s3Key")
    if isinstance(bucket, str) or isinstance(key, str):
        version = request.get("s3ObjectVersion")
        return CodeSource(
            kind="s3",
            s3_bucket=bucket if isinstance(bucket, str) else None,
            s3_key=key if isinstance(key, str) else None,
            s3_object_version=version if isinstance(version, str) else None,
        )
    if response.get("packageType") == "Image":
        return CodeSource(kind="image", image_uri=None)
    # CloudTrail leaves ``zipFile`` out of the record: no S3 or image source means an inline zip upload.
    return CodeSource(kind="zip")


def _principal(identity: Mapping[str, Any]) -> Principal:
    where = "userIdentity."
    access_key = _optional_str(identity, "accessKeyId", where)
    key_kind = None
    if access_key:
        key_kind = {"AKIA": "long-term", "ASIA": "temporary"}.get(access_key[:4])
    context = _mapping(identity.get("sessionContext"), "userIdentity.sessionContext")
    attributes = _mapping(context.get("attributes"), "userIdentity.sessionContext.attributes")
    issuer = _mapping(context.get("sessionIssuer"), "userIdentity.sessionContext.sessionIssuer")
    return Principal(
        type=_optional_str(identity, "type", where),
        arn=_optional_str(identity, "arn", where),
        account_id=_optional_str(identity, "accountId", where),
        user_name=_optional_str(identity, "userName", where),
        access_key_id=access_key,
        key_kind=key_kind,
        mfa_authenticated=parse_flag(attributes.get("mfaAuthenticated")),
        session_issuer_arn=_optional_str(issuer, "arn", "userIdentity.sessionContext.sessionIssuer."),
        session_issuer_type=_optional_str(issuer, "type", "userIdentity.sessionContext.sessionIssuer."),
        invoked_by=_optional_str(identity, "invokedBy", where),
    )


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def escape_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate written as its JSON escape text (``\\ud800``).

    JSON may spell a lone surrogate (``"\\ud800"``) that no UTF-8 text can hold: left in, it would make
    every later encode fail (DynamoDB, logs), turning an attacker's user agent into a way to hide an
    event. Written out as the escape the log itself contains, the value stays exactly as logged, and safe.
    Containers are rebuilt only where something changed.
    """
    if isinstance(value, str):
        if value.isascii() or not _SURROGATE.search(value):
            return value
        return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", value)
    if isinstance(value, Mapping):
        cleaned = {escape_surrogates(key): escape_surrogates(item) for key, item in value.items()}
        return value if all(cleaned[k] is v for k, v in value.items() if k in cleaned) else cleaned
    if isinstance(value, list):
        items = [escape_surrogates(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def normalise(record: Any) -> CodeUpdate:
    """Turn one CloudTrail record into a ``CodeUpdate``. Raises ``MalformedRecord`` with the reason."""
    if not isinstance(record, Mapping):
        raise MalformedRecord(f"record is {type(record).__name__}, expected an object")
    record = escape_surrogates(record)
    event_name = record.get("eventName")
    if not isinstance(event_name, str) or not event_name:
        raise MalformedRecord("eventName is missing or not a string")
    event_source = record.get("eventSource")
    if not isinstance(event_source, str):
        raise MalformedRecord("eventSource is missing or not a string")
    try:
        event_time = parse_time(record.get("eventTime"))
    except (ValueError, OverflowError) as error:
        raise MalformedRecord(f"eventTime is not an ISO-8601 time ({error.__class__.__name__})") from None
    if not EARLIEST_EVENT_YEAR <= event_time.year <= LATEST_EVENT_YEAR:
        # Window arithmetic near year 9999 overflows; no CloudTrail record predates the service either.
        raise MalformedRecord(f"eventTime year {event_time.year} is out of range")
    event_id = record.get("eventID")
    if event_id is not None and not isinstance(event_id, str):
        raise MalformedRecord("eventID is not a string")
    error_code = record.get("errorCode")
    if error_code is not None and not isinstance(error_code, str):
        raise MalformedRecord("errorCode is not a string")
    identity = _mapping(record.get("userIdentity"), "userIdentity")
    request = _mapping(record.get("requestParameters"), "requestParameters")
    response = _mapping(record.get("responseElements"), "responseElements")
    principal = _principal(identity)
    account_id = _optional_str(record, "recipientAccountId")
    region = _optional_str(record, "awsRegion")
    function_name = _optional_str(request, "functionName", "requestParameters.")
    code_sha = response.get("codeSha256")
    version = response.get("version")
    return CodeUpdate(
        event_id=event_id,
        event_time=event_time,
        event_name=event_name,
        event_source=event_source,
        error_code=error_code,
        src_ip=_optional_str(record, "sourceIPAddress"),
        user_arn=principal.arn,
        user_agent=_optional_str(record, "userAgent"),
        user_type=principal.type,
        account_id=account_id,
        region=region,
        function_name=function_name,
        function_arn=resolve_function_arn(function_name, request, response, account_id, region),
        publish=parse_flag(request.get("publish")),
        dry_run=parse_flag(request.get("dryRun")),
        code_sha256=code_sha if isinstance(code_sha, str) and code_sha else None,
        published_version=version if isinstance(version, str) and version != "$LATEST" else None,
        code_source=_code_source(request, response),
        principal=principal,
        raw=record,
    )
