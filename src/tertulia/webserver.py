"""`tertulia web`: the production web server for the dashboard, the inbox and the webhooks.

Granian (HTTP in Rust, the WSGI app on a pool of Python threads) serves `tertulia.wsgi`
behind a TLS-terminating proxy: one process per core, four threads each. A webhook POST
spends most of its time waiting for PostgreSQL to commit, so threads wait together; fewer
threads than gunicorn's sixteen, because Granian's own HTTP work does not hold the
interpreter lock (four and eight measured the same). Decision 0102 has the measurements;
gunicorn with `tertulia/gunicorn_conf.py` still serves the same app. Each setting can be
given as an option or in the environment named here."""

from __future__ import annotations

import os

import click

BIND = "127.0.0.1:8000"
THREADS = 4


def _default_workers() -> int:
    return int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))


@click.command()
@click.option(
    "--bind",
    default=lambda: os.environ.get("TERTULIA_BIND", BIND),
    show_default=f"$TERTULIA_BIND or {BIND}",
    help="host:port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=_default_workers,
    show_default="$WEB_CONCURRENCY or one per core",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=lambda: int(os.environ.get("TERTULIA_WEB_THREADS", THREADS)),
    show_default=f"$TERTULIA_WEB_THREADS or {THREADS}",
    help="Threads per worker running the app.",
)
def web(bind: str, workers: int, threads: int) -> None:
    """Serve the web app and the webhooks (run `tertulia manage migrate` first)."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{bind!r} is not host:port, e.g. {BIND}", param_hint="--bind")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tertulia.settings")
    processes = "1 process" if workers == 1 else f"{workers} processes"
    click.echo(f"tertulia web on http://{bind}/ ({processes}, {threads} threads each)")
    Granian(
        "tertulia.wsgi:application",
        address=host.strip("[]") or "0.0.0.0",  # noqa: S104 - ":8000" means every interface
        port=int(port),
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        websockets=False,
        backlog=2048,
        respawn_failed_workers=True,
        log_level=LogLevels.warning,
    ).serve()
