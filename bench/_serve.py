"""Serves the project with gunicorn as a deployment does (tertulia.gunicorn_conf), in its own
processes, for the benchmarks that post webhooks to it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(
    env: dict[str, str], *flags: str, conf: str = "python:tertulia.gunicorn_conf", ready: str
) -> Iterator[str]:
    """Run gunicorn with `conf` (flags given here override it) until the block ends; yields the
    base URL once `ready` (a webhook path, whose GET answers 403 without the verify token)
    answers."""
    host, port = "127.0.0.1", free_port()
    command = [str(Path(sys.executable).parent / "gunicorn"), "tertulia.wsgi:application"]
    if conf:
        command += ["-c", conf]
    command += ["--bind", f"{host}:{port}", "--log-level", "warning", *flags]
    server = subprocess.Popen(command, env=env, cwd=ROOT)  # noqa: S603
    base = f"http://{host}:{port}"
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}")
            try:
                urllib.request.urlopen(f"{base}{ready}?hub.mode=x", timeout=1)  # noqa: S310
            except urllib.error.HTTPError:
                break  # 403: the view answers
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not answer within 30 s")
        yield base
    finally:
        server.terminate()
        server.wait(20)
