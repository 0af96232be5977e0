"""A local S3-compatible server for the object-storage tests: moto's server mode, run as
its own process on 127.0.0.1 with a free port, and the AWS_* settings that point the
standard credential chain (and the endpoint) at it. Nothing leaves the machine."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

FAKE_KEY = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aws_env(endpoint: str, secret: str = FAKE_SECRET) -> dict[str, str]:
    """The environment a client needs to reach the server through the standard chain."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": FAKE_KEY,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextlib.contextmanager
def moto_server(
    log: Path, *, auth: bool = False, on_start: Callable[[int], None] | None = None
) -> Iterator[str]:
    """Start ``moto.server`` and yield its endpoint URL; ``auth`` makes it check every
    request's credentials (none are known, so every key is refused). ``on_start`` gets
    the server's pid (the benchmark reports the server's CPU time apart)."""
    port = free_port()
    env = {**os.environ, "MOTO_PORT": str(port)}
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        if on_start is not None:
            on_start(child.pid)
        yield endpoint
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def s3(endpoint: str) -> object:
    """A fresh s3fs client for the server (no cached listings between checks)."""
    import s3fs

    return s3fs.S3FileSystem(
        key=FAKE_KEY,
        secret=FAKE_SECRET,
        endpoint_url=endpoint,
        skip_instance_cache=True,
        use_listings_cache=False,
    )
