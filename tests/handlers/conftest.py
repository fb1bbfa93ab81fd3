"""Moto-backed set-up for the handler tests: a window table, the allowlist parameter, fresh handler caches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

TABLE = "codewatch-windows"
PARAMETER = "/codewatch/allowlist"
EMPTY_ALLOWLIST = json.dumps({"version": 1, "entries": []})


def create_table(client: Any, name: str = TABLE) -> None:
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        ssm = boto3.client("ssm")
        create_table(dynamodb)
        ssm.put_parameter(Name=PARAMETER, Value=EMPTY_ALLOWLIST, Type="String")
        yield {"dynamodb": dynamodb, "ssm": ssm}


@pytest.fixture
def aggregator(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The handler module, configured for the moto resources, with its per-container caches emptied."""
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("ALLOWLIST_PARAMETER", PARAMETER)
    monkeypatch.setenv("ALLOWLIST_CACHE_SECONDS", "300")
    monkeypatch.setenv("WINDOW_MINUTES", "60")
    monkeypatch.setenv("RETENTION_DAYS", "30")
    from aggregator import handler

    for cached in (handler.settings, handler.dynamodb, handler.allowlist_source):
        cached.cache_clear()
    yield handler
    for cached in (handler.settings, handler.dynamodb, handler.allowlist_source):
        cached.cache_clear()


def all_items(client: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE):
        items.extend(page["Items"])
    return items
