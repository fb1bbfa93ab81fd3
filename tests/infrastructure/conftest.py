"""Shared, session-scoped synths: each xdist worker builds each app once (jsii startup is ~2.5 s)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

REPO_ROOT = Path(__file__).resolve().parents[2]
#: CI clones the repo next to a copy of shared/; never a fixed absolute path.
SAMPLES_DIR = (REPO_ROOT / "../shared/samples").resolve()

#: A complete organization-mode configuration (issue #7); IDs are documentation examples.
ORG_CONTEXT: dict[str, Any] = {
    "organization_id": "o-a1b2c3d4e5",
    "security_account_id": "111122223333",
    "home_region": "eu-west-1",
    "forwarder_regions": ["us-east-1", "eu-central-1"],
    "stackset_target_ous": ["ou-ab12-cd34ef56"],
    "stackset_regions": ["eu-west-1", "us-east-1"],
    "member_findings": True,
    "alarm_email": "secops@example.com",
}


@dataclass
class Synth:
    """One synthesized app: its output folder and every template by stack name."""

    outdir: Path
    templates: dict[str, dict[str, Any]]

    def template(self, stack: str) -> dict[str, Any]:
        return self.templates[stack]

    def template_path(self, stack: str) -> Path:
        return self.outdir / f"{stack}.template.json"


def synthesize(context: dict[str, Any], outdir: Path) -> Synth:
    from stacks.application import build_app

    app, _ = build_app(context=context, outdir=str(outdir))
    assembly = app.synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    return Synth(outdir=outdir, templates=json.loads(json.dumps(templates)))


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize({}, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def org_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(ORG_CONTEXT, tmp_path_factory.mktemp("cdk-org"))


@pytest.fixture(scope="session")
def detection(default_synth: Synth) -> dict[str, Any]:
    return default_synth.template("Codewatch")


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def one(template: dict[str, Any], resource_type: str, contains: str = "") -> tuple[str, dict[str, Any]]:
    found = [(k, v) for k, v in resources(template, resource_type).items() if contains in k]
    assert len(found) == 1, f"expected one {resource_type} matching {contains!r}, got {[k for k, _ in found]}"
    return found[0]


def statements(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every policy statement in the template: (logical id, resource type, statement)."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        docs = [props.get("PolicyDocument"), props.get("KeyPolicy"), props.get("AssumeRolePolicyDocument")]
        docs += [p.get("PolicyDocument") for p in props.get("Policies", []) or []]
        if resource["Type"] == "AWS::Events::EventBusPolicy" and "Statement" in props:
            docs.append({"Statement": [props["Statement"]]})
        for doc in docs:
            if doc:
                stmts = doc["Statement"]
                for stmt in stmts if isinstance(stmts, list) else [stmts]:
                    yield logical_id, resource["Type"], stmt


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
