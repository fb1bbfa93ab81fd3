"""Validate findings against Security Hub's own model of ``BatchImportFindings`` before sending them.

Two sources of rules:

* the botocore service model (``securityhub``, input member ``Findings`` → ``AwsSecurityFinding``): required
  members, unknown members, types, enums, ``min``/``max`` and patterns where the model has them;
* the documented ASFF limits the model does not encode (Title 256, Description 1024, Resources 1–32,
  ProductFields 50 keys of 128 / values of 2048, Id 512, the ``Types`` namespaces, timestamps...), from the
  explicit table below and from the "Length Constraints"/"Array Members" sentences of the model's own
  member documentation.

Lengths are counted in UTF-16 code units, as Security Hub (a Java service) does; that is never less than
Python's ``len``, so a finding that passes here is not rejected for length there.

botocore is imported lazily and the model is loaded once per process: it is part of the Lambda runtime,
but this module lives in the stdlib-only core and the publisher's cold start should not pay for it twice.
The result is a list of problems, each starting with a JSON path (``$.Resources[0].Id: ...``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

TYPE_NAMESPACES = (
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
)
SCHEMA_VERSION = "2018-10-08"
TIMESTAMP_FIELDS = ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt", "ProcessedAt")
# YYYY-MM-DDTHH:MM:SS, up to 9 fractional digits, then Z or an offset of +/-HH[:MM] (Security Hub's formats).
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)$")
_ACCOUNT = re.compile(r"^\d{12}$")
MAX_FINDING_BYTES = 240 * 1024  # "The maximum allowed size for a finding is 240 Kb" (BatchImportFindings)


def utf16_len(text: str) -> int:
    """Security Hub counts string lengths in UTF-16 code units: an astral character counts twice."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# Documented limits the model does not encode: path pattern -> (min length, max length) or item counts.
# Paths use ``[]`` for any list index and ``{}`` for any map value.
DOCUMENTED_LENGTHS: dict[str, tuple[int, int]] = {
    "$.Id": (1, 512),
    "$.GeneratorId": (1, 512),
    "$.Title": (1, 256),
    "$.Description": (1, 1024),
    "$.ProductArn": (12, 2048),
    "$.CompanyName": (1, 128),
    "$.ProductName": (1, 128),
    "$.Resources[].Type": (1, 256),
    "$.Resources[].Region": (1, 16),
    "$.Resources[].Details.Other{}": (0, 1023),
    "$.ProductFields{}": (0, 2048),
    "$.Remediation.Recommendation.Text": (1, 512),
    "$.Action.AwsApiCallAction.Api": (1, 128),
    "$.Action.AwsApiCallAction.ServiceName": (1, 128),
}
DOCUMENTED_COUNTS: dict[str, tuple[int, int]] = {
    "$.Resources": (1, 32),
    "$.Types": (0, 50),
    "$.FindingProviderFields.Types": (0, 50),
    "$.ProductFields": (0, 50),
    "$.Resources[].Details.Other": (0, 50),
}
DOCUMENTED_KEY_LENGTHS: dict[str, int] = {"$.ProductFields": 128, "$.Resources[].Details.Other": 127}
RANGES: dict[str, tuple[int | None, int | None]] = {"$.Confidence": (0, 100), "$.Criticality": (0, 100)}

_LENGTH_DOC = re.compile(
    r"Length Constraints:\s*(?:Minimum (?:length )?of (\d+)(?: length)?\.\s*)?"
    r"(?:Maximum (?:length )?of (\d+)(?: length)?|(\d+))\s*\."
)
_COUNT_DOC = re.compile(r"Array Members:\s*(?:Minimum number of (\d+) items?\.\s*)?Maximum number of (\d+) items?\.")


@cache
def finding_shape(service_model: Any = None) -> Any:
    """``AwsSecurityFinding`` from botocore's bundled model, loaded on first use and kept.

    A caller that already holds a Security Hub client passes ``client.meta.service_model`` and saves loading
    the model a second time (about 35 ms of a cold start).
    """
    if service_model is None:
        # Imported here on purpose: see the module docstring.
        import botocore.session

        service_model = botocore.session.get_session().get_service_model("securityhub")
    return service_model.operation_model("BatchImportFindings").input_shape.members["Findings"].member


@cache
def _documented(doc: str | None) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """Length and item-count limits stated in a member's documentation, if any."""
    text = re.sub(r"<[^>]+>", " ", doc or "")
    length = count = None
    found = _LENGTH_DOC.search(text)
    if found:
        minimum = int(found.group(1) or 0)
        maximum = int(found.group(2) or found.group(3))
        length = (minimum, maximum)
    found = _COUNT_DOC.search(text)
    if found:
        count = (int(found.group(1) or 0), int(found.group(2)))
    return length, count


class _Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def check(self, shape: Any, value: Any, path: str, table_path: str, doc: str | None = None) -> None:
        checker: Callable[[Any, Any, str, str, str | None], None] | None = getattr(
            self, f"_check_{shape.type_name}", None
        )
        if checker is None:
            return  # a type this finding never uses (timestamp, blob): nothing to check
        checker(shape, value, path, table_path, doc)

    def _check_structure(self, shape: Any, value: Any, path: str, table_path: str, doc: str | None) -> None:
        if shape.metadata.get("document"):
            return  # free-form document members (Azure/GCP details) accept any JSON
        if not isinstance(value, Mapping):
            self.add(path, f"expected an object, got {type(value).__name__}")
            return
        for required in shape.required_members:
            if required not in value:
                self.add(path, f"missing required member {required}")
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                self.add(f"{path}.{name}", f"unknown member of {shape.name}")
                continue
            member_doc = getattr(member, "documentation", None)
            self.check(member, member_value, f"{path}.{name}", f"{table_path}.{name}", member_doc)

    def _count(self, size: int, path: str, table_path: str, shape: Any, doc: str | None) -> None:
        limits = [(shape.metadata.get("min"), shape.metadata.get("max"))]
        limits.append(DOCUMENTED_COUNTS.get(table_path, (None, None)))
        limits.append(_documented(doc)[1] or (None, None))
        for minimum, maximum in limits:
            if minimum is not None and size < minimum:
                self.add(path, f"has {size} items, fewer than {minimum}")
            if maximum is not None and size > maximum:
                self.add(path, f"has {size} items, more than {maximum}")

    def _check_list(self, shape: Any, value: Any, path: str, table_path: str, doc: str | None) -> None:
        if not isinstance(value, list | tuple):
            self.add(path, f"expected a list, got {type(value).__name__}")
            return
        self._count(len(value), path, table_path, shape, doc)
        for index, item in enumerate(value):
            self.check(shape.member, item, f"{path}[{index}]", f"{table_path}[]")

    def _check_map(self, shape: Any, value: Any, path: str, table_path: str, doc: str | None) -> None:
        if not isinstance(value, Mapping):
            self.add(path, f"expected an object, got {type(value).__name__}")
            return
        self._count(len(value), path, table_path, shape, doc)
        key_limit = DOCUMENTED_KEY_LENGTHS.get(table_path)
        for key, item in value.items():
            if not isinstance(key, str):
                self.add(path, f"has a {type(key).__name__} key; keys must be strings")
                continue
            if key_limit is not None and utf16_len(key) > key_limit:
                self.add(f"{path}[{key[:64]!r}]", f"key is longer than {key_limit}")
            self.check(shape.value, item, f"{path}[{key!r}]", f"{table_path}{{}}")

    def _check_string(self, shape: Any, value: Any, path: str, table_path: str, doc: str | None) -> None:
        if not isinstance(value, str):
            self.add(path, f"expected a string, got {type(value).__name__}")
            return
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            self.add(path, f"{value[:64]!r} is not one of {', '.join(enum)}")
        size = utf16_len(value)
        limits = [(shape.metadata.get("min"), shape.metadata.get("max"))]
        limits.append(DOCUMENTED_LENGTHS.get(table_path, (None, None)))
        limits.append(_documented(doc)[0] or (None, None))
        for minimum, maximum in limits:
            if minimum is not None and size < minimum:
                self.add(path, f"length {size} is under the minimum {minimum}")
            if maximum is not None and size > maximum:
                self.add(path, f"length {size} is over the maximum {maximum}")
        pattern = shape.metadata.get("pattern")
        if pattern:
            compiled = _compiled(pattern)
            # Java's String.matches: the whole value, and '.' does not match line terminators.
            if compiled is not None and not compiled.fullmatch(value):
                self.add(path, f"does not match the model pattern {pattern}")

    def _check_integer(self, shape: Any, value: Any, path: str, table_path: str, doc: str | None) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {type(value).__name__}")
            return
        limits = ((shape.metadata.get("min"), shape.metadata.get("max")), RANGES.get(table_path, (None, None)))
        for minimum, maximum in limits:
            if minimum is not None and value < minimum:
                self.add(path, f"{value} is under the minimum {minimum}")
            if maximum is not None and value > maximum:
                self.add(path, f"{value} is over the maximum {maximum}")

    _check_long = _check_integer

    def _check_double(self, shape: Any, value: Any, path: str, table_path: str, doc: str | None) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"expected a number, got {type(value).__name__}")

    _check_float = _check_double

    def _check_boolean(self, shape: Any, value: Any, path: str, table_path: str, doc: str | None) -> None:
        if not isinstance(value, bool):
            self.add(path, f"expected a boolean, got {type(value).__name__}")


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a Java-only construct: the service checks it, we cannot


def _semantic(finding: Mapping[str, Any], validator: _Validator) -> None:
    """Rules from the ASFF documentation that are about meaning rather than shape."""
    if finding.get("SchemaVersion") not in (None, SCHEMA_VERSION):
        validator.add("$.SchemaVersion", f"must be {SCHEMA_VERSION}")
    account = finding.get("AwsAccountId")
    if isinstance(account, str) and not _ACCOUNT.match(account):
        validator.add("$.AwsAccountId", "must be a 12-digit account ID")
    for types_path, types in (
        ("$.Types", finding.get("Types")),
        ("$.FindingProviderFields.Types", (finding.get("FindingProviderFields") or {}).get("Types")),
    ):
        for index, finding_type in enumerate(types if isinstance(types, list) else ()):
            if not isinstance(finding_type, str):
                continue
            parts = finding_type.split("/")
            if len(parts) > 3 or parts[0] not in TYPE_NAMESPACES:
                validator.add(
                    f"{types_path}[{index}]",
                    f"must be namespace[/category[/classifier]] with a namespace in {', '.join(TYPE_NAMESPACES)}",
                )
    times: dict[str, datetime] = {}
    for name in TIMESTAMP_FIELDS:
        value = finding.get(name)
        if value is None:
            continue
        parsed = _timestamp(value)
        if parsed is None:
            validator.add(f"$.{name}", "is not a Security Hub timestamp (YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM))")
        else:
            times[name] = parsed
    if "CreatedAt" in times and "UpdatedAt" in times and times["UpdatedAt"] < times["CreatedAt"]:
        validator.add("$.UpdatedAt", "is earlier than CreatedAt")
    if "FirstObservedAt" in times and "LastObservedAt" in times and times["LastObservedAt"] < times["FirstObservedAt"]:
        validator.add("$.LastObservedAt", "is earlier than FirstObservedAt")
    call = ((finding.get("Action") or {}).get("AwsApiCallAction")) or {}
    for name in ("FirstSeen", "LastSeen"):
        if name in call and _timestamp(call[name]) is None:
            validator.add(f"$.Action.AwsApiCallAction.{name}", "is not a Security Hub timestamp")
    address = (call.get("RemoteIpDetails") or {}).get("IpAddressV4")
    if address is not None:
        try:
            if ipaddress.ip_address(address).version != 4:
                raise ValueError("not IPv4")
        except (ValueError, TypeError):
            validator.add("$.Action.AwsApiCallAction.RemoteIpDetails.IpAddressV4", "is not an IPv4 address")
    size = len(json.dumps(finding, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
    if size > MAX_FINDING_BYTES:
        validator.add("$", f"is {size} bytes; BatchImportFindings refuses findings over {MAX_FINDING_BYTES}")
    severity = finding.get("Severity") or {}
    provider_severity = (finding.get("FindingProviderFields") or {}).get("Severity") or {}
    if "Label" not in severity and "Label" not in provider_severity:
        validator.add("$.Severity", "needs a Label (here or in FindingProviderFields.Severity)")


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    # Python before 3.11 could not read 9 fractional digits; keep at most 6 for the comparison.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def validate_finding(finding: Any, service_model: Any = None) -> list[str]:
    """Problems that would make Security Hub reject ``finding``; an empty list means it is valid."""
    validator = _Validator()
    validator.check(finding_shape(service_model), finding, "$", "$")
    if isinstance(finding, Mapping):
        _semantic(finding, validator)
    # The model, the table and the member documentation can state the same limit: report it once.
    return list(dict.fromkeys(validator.problems))


def validate_findings(findings: list[Any]) -> list[str]:
    """Problems in a whole ``BatchImportFindings`` request (1–100 findings), paths prefixed by index."""
    problems: list[str] = []
    if not 1 <= len(findings) <= 100:
        problems.append(f"$: {len(findings)} findings; BatchImportFindings takes 1 to 100")
    for index, finding in enumerate(findings):
        problems.extend(f"[{index}]{problem[1:]}" for problem in validate_finding(finding))
    return problems
