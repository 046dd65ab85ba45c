"""Serves the project as a deployment does, in its own processes, for the benchmarks that post
webhooks to it: `tertulia web` (Granian, tertulia/webserver.py), or gunicorn with
tertulia/gunicorn_conf.py to compare."""

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
SERVERS = ("web", "gunicorn")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def describe(server: str, workers: int | None, threads: int | None) -> str:
    processes = workers or "one process per core"
    if server == "web":
        return f"`tertulia web` (Granian), {processes} × {threads or 4} threads"
    return f"gunicorn (tertulia.gunicorn_conf), {processes} × {threads or 16} threads"


@contextmanager
def serve(
    env: dict[str, str],
    *,
    ready: str,
    server: str = "web",
    workers: int | None = None,
    threads: int | None = None,
) -> Iterator[str]:
    """Run the web server until the block ends; yields its base URL once `ready` (a webhook
    path, whose GET answers 403 without the verify token, 404 for no channel) answers."""
    host, port = "127.0.0.1", free_port()
    bin_dir = Path(sys.executable).parent
    if server == "web":
        command = [str(bin_dir / "tertulia"), "web", "--bind", f"{host}:{port}"]
    elif server == "gunicorn":
        command = [str(bin_dir / "gunicorn"), "tertulia.wsgi:application"]
        command += ["-c", "python:tertulia.gunicorn_conf", "--bind", f"{host}:{port}"]
        command += ["--log-level", "warning"]
    else:
        raise ValueError(f"server is one of {SERVERS}, not {server!r}")
    if workers:
        command += ["--workers", str(workers)]
    if threads:
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, env=env, cwd=ROOT)  # noqa: S603
    base = f"http://{host}:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}")
            try:
                urllib.request.urlopen(f"{base}{ready}?hub.mode=x", timeout=1)  # noqa: S310
            except urllib.error.HTTPError:
                break  # the view answers
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{command[0]} did not answer within 30 s")
        yield base
    finally:
        process.terminate()
        process.wait(20)
