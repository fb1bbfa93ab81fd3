"""The aggregator's configuration, read from its environment once per container and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from codewatch.pattern import PrincipalSelection, parse_principal_types


class SettingsError(ValueError):
    """A missing or invalid environment variable; the message names it."""


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, str(default))
    if not raw.isdigit() or int(raw) <= 0:
        raise SettingsError(f"{name}={raw!r}: expected a positive whole number")
    return int(raw)


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    allowlist_parameter: str
    allowlist_cache_seconds: int
    window_seconds: int
    retention_seconds: int
    principals: PrincipalSelection
    max_receive_count: int  # the ingest queue's redrive count: the last delivery before the DLQ

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        table_name = environ.get("TABLE_NAME", "")
        parameter = environ.get("ALLOWLIST_PARAMETER", "")
        if not table_name:
            raise SettingsError("TABLE_NAME is not set")
        if not parameter:
            raise SettingsError("ALLOWLIST_PARAMETER is not set")
        try:
            principals = parse_principal_types(environ.get("PRINCIPAL_TYPES", "default"))
        except ValueError as error:
            raise SettingsError(f"PRINCIPAL_TYPES: {error}") from None
        return cls(
            table_name=table_name,
            allowlist_parameter=parameter,
            allowlist_cache_seconds=_positive_int(environ, "ALLOWLIST_CACHE_SECONDS", 300),
            window_seconds=_positive_int(environ, "WINDOW_MINUTES", 60) * 60,
            retention_seconds=_positive_int(environ, "RETENTION_DAYS", 30) * 86400,
            principals=principals,
            max_receive_count=_positive_int(environ, "MAX_RECEIVE_COUNT", 5),
        )
