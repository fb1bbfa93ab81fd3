"""moto server on a free loopback port, stopped on exit whatever happens (error, Ctrl-C)."""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

LOOPBACK = "127.0.0.1"
# Only fake credentials ever reach the emulator; a real profile in the environment must not.
EMULATOR_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "codewatch-demo",
    "AWS_SECRET_ACCESS_KEY": "codewatch-demo",
    "AWS_SESSION_TOKEN": "codewatch-demo",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # moto's DynamoDB Streams needs it (DESIGN.md)
}
CLEARED_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server(region: str) -> Iterator[str]:
    """Yield the endpoint URL of a fresh moto server; the process's AWS settings point at it meanwhile."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    endpoint = f"http://{LOOPBACK}:{port}"
    saved = {
        name: os.environ.get(name)
        for name in (*EMULATOR_ENVIRONMENT, *CLEARED_VARIABLES, "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION")
    }
    server.start()
    try:
        # moto's backends live in the process: a server started after another one (tests) sees its
        # resources unless they are reset.
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(reset, timeout=10):  # noqa: S310 - our own loopback server
            pass
        for name in CLEARED_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(EMULATOR_ENVIRONMENT)
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": region, "AWS_REGION": region})
        yield endpoint
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
