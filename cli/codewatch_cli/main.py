"""The ``codewatch`` console command: one argparse parser, one module per subcommand.

A subcommand is a module ``codewatch_cli.<name>`` with ``add_parser(subparsers)`` and ``run(args) -> int``.
To add one, write the module and list its name in ``SUBCOMMANDS``. Modules keep heavy imports (boto3,
moto) inside ``run`` so that building the parser, and ``codewatch hunt``, stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

SUBCOMMANDS: tuple[str, ...] = (
    "hunt",
    "demo",
    "findings_cmd",  # codewatch findings
    "allowlist_cmd",  # codewatch allowlist
)


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"codewatch_cli.{name}") for name in SUBCOMMANDS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codewatch", description="Detect AWS Lambda code changes (UpdateFunctionCode) in CloudTrail."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _modules():
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (``| head``) has gone: stop quietly. Point stdout at /dev/null so the interpreter's
        # final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
