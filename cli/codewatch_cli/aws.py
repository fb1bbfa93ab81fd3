"""What every AWS-facing ``codewatch`` command shares: the options, the session, and the error rules.

Options: ``--region``, ``--profile``, ``--endpoint-url``. Anything not given comes from the standard AWS
environment variables and files, as boto3 reads them (``AWS_PROFILE``, ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_MAX_ATTEMPTS``...). ``AWS_REGION`` is honoured
too: Lambda and many CI systems set only that one, and boto3 ignores it.

Errors: an operator must see one line saying what went wrong and what to do, never a traceback. A
command raises ``CommandError`` (or lets a botocore error escape from inside ``aws_errors``); the
``command`` decorator prints ``<prog>: error: <message>`` on stderr and returns the exit status (2).

boto3 is imported inside the functions, not at module level: ``main`` builds every subcommand's parser,
and ``codewatch hunt`` must not pay for importing boto3.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from codewatch.sanitize import escape_controls, truncate

EXIT_ERROR = 2
MESSAGE_LIMIT = 400  # a server's error message is shown, but must not flood the terminal

# Error codes that mean "the credentials were rejected", as opposed to "not allowed to do this".
_BAD_CREDENTIALS = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch"}
)
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})


class CommandError(Exception):
    """A failure to report as one line on stderr; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS options (default: the standard AWS environment variables and files)")
    group.add_argument("--region", metavar="REGION", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION)")
    group.add_argument("--profile", metavar="NAME", help="named profile from the AWS config files (AWS_PROFILE)")
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="send AWS calls to this endpoint, e.g. a local emulator (default: AWS_ENDPOINT_URL, else AWS)",
    )


def session_from_args(args: argparse.Namespace) -> Any:
    """A ``boto3.Session`` for the command's options; raises ``CommandError`` for an unknown profile or no region."""
    import boto3
    from botocore.exceptions import BotoCoreError

    profile = getattr(args, "profile", None)
    try:
        session = _new_session(boto3, profile, getattr(args, "region", None))
        if session.region_name is None:
            region = os.environ.get("AWS_REGION")
            if not region:
                raise CommandError("no AWS region: pass --region or set AWS_REGION (or a region in your profile)")
            session = _new_session(boto3, profile, region)
    except BotoCoreError as error:  # ProfileNotFound, a malformed config file
        raise CommandError(_clean(str(error))) from None
    return session


@functools.cache
def _shared_loader() -> Any:
    """One botocore data loader per process. Each new session otherwise re-reads and re-parses the service
    models and endpoint rules (about 0.1 s a client), which adds up when one process runs many commands
    (``codewatch demo``, the tests). Models do not depend on credentials or region, so sharing is safe."""
    from botocore.loaders import create_loader

    return create_loader()


def _new_session(boto3: Any, profile: str | None, region: str | None) -> Any:
    import botocore.session

    core = botocore.session.get_session()
    loader = _shared_loader()
    core.register_component("data_loader", loader)
    session = boto3.Session(botocore_session=core, profile_name=profile, region_name=region)
    # boto3 appends its own data folder to the loader's search path on every Session: keep one copy.
    loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session


def client(args: argparse.Namespace, service: str) -> Any:
    """A boto3 client for ``service`` honouring ``--region``, ``--profile`` and ``--endpoint-url``."""
    from botocore.config import Config

    session = session_from_args(args)
    # Standard retries (3 attempts) unless the operator chose otherwise: legacy mode's five attempts with
    # exponential back-off make an unreachable endpoint look like a hang.
    retries: dict[str, Any] = {} if os.environ.get("AWS_RETRY_MODE") else {"mode": "standard"}
    config = Config(connect_timeout=10, read_timeout=30, retries=retries, user_agent_extra="codewatch-cli")
    endpoint_url = getattr(args, "endpoint_url", None)
    try:
        with aws_errors():
            return session.client(service, endpoint_url=endpoint_url, config=config)
    except ValueError as error:  # "Invalid endpoint: ..." from botocore
        raise CommandError(f"invalid --endpoint-url: {_clean(str(error))}") from None


def describe_aws_error(error: BaseException) -> str | None:
    """One line for an AWS/botocore error, or ``None`` if ``error`` is not one (a bug: let it surface)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
        ProfileNotFound,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        message = _clean(str(info.get("Message") or ""))
        operation = error.operation_name
        if code in _DENIED:
            return f"access denied for {operation}: {message or code} (check the IAM policy of the caller)"
        if code in _EXPIRED:
            return f"AWS credentials have expired ({code}): refresh them (e.g. aws sso login) and retry"
        if code in _BAD_CREDENTIALS:
            return f"AWS rejected the credentials ({code}): check the profile, keys and region"
        return f"{operation} failed: {code}: {message}" if message else f"{operation} failed: {code}"
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no usable AWS credentials: pass --profile, set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or run where a role provides them"
        )
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(error, ProfileNotFound):
        return _clean(str(error))
    if isinstance(error, EndpointConnectionError | BotoConnectionError):
        return f"cannot reach the AWS endpoint: {_clean(str(error))} (check --endpoint-url, the region and the network)"
    if isinstance(error, ParamValidationError):
        return f"invalid input: {_clean(str(error))}"
    if isinstance(error, BotoCoreError):
        return _clean(str(error))
    return None


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore errors raised inside the block into ``CommandError`` (exit 2); anything else propagates."""
    try:
        yield
    except Exception as error:
        message = describe_aws_error(error)
        if message is None:
            raise
        raise CommandError(message) from None


def command(prog: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Decorate a subcommand's ``run``: a ``CommandError`` or AWS error becomes one stderr line and its status."""

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def wrapper(args: argparse.Namespace) -> int:
            try:
                with aws_errors():
                    return run(args)
            except CommandError as error:
                sys.stdout.flush()  # what was already printed comes before the error, not after it
                sys.stderr.write(f"{prog}: error: {error.message}\n")
                return error.status

        return wrapper

    return decorate


def _clean(text: str) -> str:
    """Server and library messages may echo our input (names, values): escape and bound them, one line."""
    return truncate(escape_controls(" ".join(text.split())), MESSAGE_LIMIT)
