#!/usr/bin/env python3
"""CDK entry point: ``npx cdk synth`` / ``npx cdk deploy`` run this (see cdk.json)."""

from __future__ import annotations

import sys
from pathlib import Path

# The detection core (codewatch.pattern) lives in lambda_src/; make it importable even when the
# package is not installed in the interpreter the CDK CLI happens to run.
ROOT = Path(__file__).resolve().parent
for path in (ROOT, ROOT / "lambda_src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from stacks.application import build_app  # noqa: E402
from stacks.config import ConfigError  # noqa: E402


def main() -> None:
    try:
        app, _ = build_app()
    except ConfigError as error:
        sys.exit(f"codewatch: invalid cdk.json context: {error}")
    app.synth()


if __name__ == "__main__":
    main()
