"""Builds the whole CDK app: configuration, stacks and the compliance checks that gate synth.

``app.py`` and the tests share this, so what the tests check is what ``cdk synth`` produces.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from stacks.config import CodewatchConfig, config_from_node
from stacks.detection_stack import DetectionStack
from stacks.forwarder_stack import ForwarderStack
from stacks.organization import OrganizationRollout

DETECTION_STACK_NAME = "Codewatch"
CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """``cdk.json``'s context, so an app built in-process (tests) matches ``cdk synth`` exactly."""
    return dict(json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {}))


def add_compliance_checks(app: App) -> None:
    """cdk-nag 3.x: rule packs are validation plugins; any unacknowledged finding fails the synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, CodewatchConfig]:
    """The app with every stack and check. ``context`` overrides/extends ``cdk.json`` (tests use it)."""
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    config = config_from_node(app.node)
    env = _environment(app)
    if config.organization_mode:
        # The detection stack must live in the home region of the security account: forwarders
        # target the central bus there by ARN.
        env = Environment(account=config.security_account_id, region=config.home_region)
    detection = DetectionStack(
        app,
        DETECTION_STACK_NAME,
        config=config,
        env=env,
        description="codewatch: real-time detection of AWS Lambda UpdateFunctionCode (security account)",
    )
    if config.stackset_target_ous:
        OrganizationRollout(detection, "OrganizationRollout", config=config)
    for region in config.forwarder_regions:
        forwarder = ForwarderStack(
            app,
            f"{DETECTION_STACK_NAME}Forwarder-{region}",
            config=config,
            env=Environment(account=config.security_account_id, region=region),
            description=f"codewatch forwarder: {region} -> central bus in {config.home_region}",
        )
        # The central bus (and its policy) must exist before anything forwards to it.
        forwarder.add_stack_dependency(detection)
    add_compliance_checks(app)
    return app, config


def _environment(app: App) -> Environment | None:
    """Deploy-time account/region from the CLI's profile when known; environment-agnostic otherwise.

    Synth stays offline either way: nothing here looks anything up.
    """
    account = app.node.try_get_context("account") or _env_var("CDK_DEFAULT_ACCOUNT")
    region = app.node.try_get_context("region") or _env_var("CDK_DEFAULT_REGION")
    if account is None and region is None:
        return None
    return Environment(account=account, region=region)


def _env_var(name: str) -> str | None:
    return os.environ.get(name) or None
