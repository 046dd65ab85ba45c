"""gunicorn settings for tertulia's web app (the dashboard, the inbox and the webhooks):

    gunicorn -c python:tertulia.gunicorn_conf tertulia.wsgi

behind a TLS-terminating proxy. Threaded workers (gthread), one process per core, sixteen threads
each: a webhook POST spends most of its time waiting for PostgreSQL to commit its INSERT, and
threads wait together (the commits share one WAL flush) where one sync worker per core would
wait one request at a time. Keep-alive lets a proxy or Meta reuse connections. Each thread keeps
its own database connection: processes × threads connections per machine (32 on 2 cores).
decision 0090 has the measurements; any setting can be overridden on the command line or in
the environment named here."""

from __future__ import annotations

import os

bind = os.environ.get("TERTULIA_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
worker_class = "gthread"
threads = int(os.environ.get("TERTULIA_WEB_THREADS", "16"))
keepalive = 5
backlog = 2048
timeout = 30
graceful_timeout = 30
# Proxies on this machine may say which scheme and client they served.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
