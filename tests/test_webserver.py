"""`tertulia web`: Granian serving the project's WSGI app."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from tertulia.cli import main


def test_a_bind_that_is_not_host_and_port_is_refused_with_an_example() -> None:
    result = CliRunner().invoke(main, ["web", "--bind", "localhost"])
    assert result.exit_code == 2
    assert "'localhost' is not host:port, e.g. 127.0.0.1:8000" in result.output


def test_it_serves_the_app_until_stopped(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path}/web.sqlite3",
        TERTULIA_VAR_DIR=str(tmp_path),
        WEB_CONCURRENCY="1",
    )
    tertulia = str(Path(sys.executable).with_name("tertulia"))
    server = subprocess.Popen(  # noqa: S603
        [tertulia, "web", "--bind", f"127.0.0.1:{port}", "--threads", "2"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(  # noqa: S310
                    f"http://127.0.0.1:{port}/admin/login/", timeout=5
                ) as response:
                    status, page = response.status, response.read()
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert status == 200
        assert b"csrfmiddlewaretoken" in page  # Django's own login form
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    # A new operator is told where it listens.
    assert f"tertulia web on http://127.0.0.1:{port}/ (1 process, 2 threads each)" in output
