"""Benchmark: WhatsApp webhook ingestion under concurrent load, and the hand-off to processing.

The real webhook (`/webhooks/whatsapp/<name>/`: signature check, one encrypted WebhookEvent
INSERT committed before the 200, on the WSGI fast path) served by `tertulia web` on
PostgreSQL, hit with distinct signed Meta-shaped bodies (one inbound message each) from many
connections at once. Reports requests
per second and p50/p99 latency measured by the client, what the client itself cost in CPU,
and checks that every request answered 200 is stored (by its message id).

Then the hand-off: with the ingestion over and its events set aside, a worker process runs
the webhook loop (`tertulia worker`'s thread: claim stored events in batches, process them)
while paced POSTs arrive; for each, the delay from stored (received_at) to claimed by the
worker, and to processed.

    python bench/inbound.py [--requests 10000] [--concurrency 32] [--server web|gunicorn]
        [--workers N] [--threads N] [--client lean|aiohttp]
        [--database-url postgres://...] [--redis-url redis://...]

The server starts as a deployment runs it: `tertulia web` (Granian, one process per core, four
threads each; decision 0102), or gunicorn with tertulia/gunicorn_conf.py to compare.

The load generator runs on the same 2-core machine as the server, so it must be cheap: the
default `lean` client is one thread driving non-blocking sockets with requests built and
signed before the clock starts (about 40 µs of CPU a request); `--client aiohttp` is the
earlier asyncio client, kept to show what it cost.

Without --database-url it creates (and drops) the PostgreSQL database `tertulia_bench_in`;
with it, it migrates that database and empties its tables first.
Targets: ≥ 1,500 requests/s, p99 ≤ 100 ms, zero events lost; hand-off within ~100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._serve import SERVERS, describe, serve  # noqa: E402

BENCH_DB = "tertulia_bench_in"
SECRET = "bench-app-secret"  # noqa: S105 - shared with the load generator only
PATH = "/webhooks/whatsapp/bench/"
WARMUP = 500
WARMUP_FIRST = 90_000_000  # message numbers of the warm-up, apart from the measured ones
HANDOFF_FIRST = 80_000_000


def setup() -> None:
    """Child: migrate, empty, configure whatsapp:bench."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from django.core.management import call_command

    from tertulia.messaging.models import ChannelConfig

    call_command("flush", interactive=False, verbosity=0)
    ChannelConfig.objects.create(
        name="bench",
        phone_number_id="100000000000001",
        access_token="bench-token",  # noqa: S106 - nothing is sent
        app_secret=SECRET,
        verify_token="bench",  # noqa: S106
        service_window=False,
    )


def stored_ids() -> None:
    """Child: print the message numbers of every stored event, as JSON; then set them all
    aside (processed), so that the hand-off phase measures only its own events."""
    from tertulia.cli import setup_django

    setup_django()
    from tertulia.core import clock
    from tertulia.messaging.models import WebhookEvent

    found = re.compile(r"wamid\.bench(\d+)")
    numbers = []
    for body in WebhookEvent.objects.filter(channel="whatsapp:bench").values_list(
        "body", flat=True
    ):
        numbers += [int(n) for n in found.findall(body)]
    WebhookEvent.objects.filter(processed_at__isnull=True).update(processed_at=clock.now())
    print(json.dumps(numbers))


def drain() -> None:
    """Child: the webhook loop of `tertulia worker`, until SIGTERM."""
    from tertulia.cli import setup_django

    setup_django()
    import threading

    from tertulia.messaging.channels.whatsapp import handoff
    from tertulia.messaging.signals import worker_starting

    worker_starting.send(sender=None)  # as `tertulia worker` does before its loops
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    handoff.run_forever(stop)


def delays() -> None:
    """Child: stored→claimed and stored→processed of the hand-off phase's events, in ms."""
    from tertulia.cli import setup_django

    setup_django()
    from tertulia.messaging.models import WebhookEvent

    rows = WebhookEvent.objects.filter(channel="whatsapp:bench", id__gt=int(sys.argv[-1]))
    claimed, processed, pending = [], [], 0
    for received, claimed_at, processed_at in rows.values_list(
        "received_at", "claimed_at", "processed_at"
    ):
        if claimed_at is None or processed_at is None:
            pending += 1
            continue
        claimed.append((claimed_at - received).total_seconds() * 1000)
        processed.append((processed_at - received).total_seconds() * 1000)
    print(json.dumps({"claimed": claimed, "processed": processed, "pending": pending}))


def last_id() -> None:
    from tertulia.cli import setup_django

    setup_django()
    from tertulia.messaging.models import WebhookEvent

    print(WebhookEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0)


def body(n: int) -> bytes:
    message = {
        "from": f"5197{n % 10_000_000:07d}",
        "id": f"wamid.bench{n}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": "Hoy pude hablar con ella sin gritar."},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "51900000001", "phone_number_id": "100000000000001"},
        "contacts": [{"profile": {"name": "P"}, "wa_id": message["from"]}],
        "messages": [message],
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "200000000000001", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(envelope).encode()


def raw_request(host: str, port: int, n: int) -> bytes:
    """The whole HTTP/1.1 request for message `n`, signed, ready to write to a socket."""
    from tertulia.messaging.channels.whatsapp.signature import SIGNATURE_HEADER, sign

    payload = body(n)
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"{SIGNATURE_HEADER}: {sign(payload, SECRET)}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class LoadResult:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.answered: list[int] = []  # message numbers answered 200
        self.failed = 0
        self.seconds = 0.0
        self.cpu = 0.0


def lean_load(host: str, port: int, first: int, requests: int, concurrency: int) -> LoadResult:
    """`requests` POSTs from `concurrency` keep-alive connections driven by one thread with
    non-blocking sockets; reconnects when the server closes. Requests are built first."""
    prepared = [raw_request(host, port, first + i) for i in range(requests)]
    result = LoadResult()
    selector = selectors.DefaultSelector()
    pending = iter(range(requests))
    state: dict[socket.socket, list] = {}  # sock -> [index, started, unsent, received]
    active = 0

    def open_next(sock: socket.socket | None) -> None:
        nonlocal active
        index = next(pending, None)
        if index is None:
            if sock is not None:
                selector.unregister(sock)
                sock.close()
                active -= 1
            return
        if sock is None:
            sock = socket.socket()
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect_ex((host, port))
            selector.register(sock, selectors.EVENT_WRITE)
            active += 1
        else:
            selector.modify(sock, selectors.EVENT_WRITE)
        state[sock] = [index, time.perf_counter(), memoryview(prepared[index]), bytearray()]

    def finish(sock: socket.socket, keep: bool, ok: bool) -> None:
        nonlocal active
        index, started = state[sock][0], state[sock][1]
        if ok:
            result.latencies.append(time.perf_counter() - started)
            result.answered.append(first + index)
        else:
            result.failed += 1
        if keep:
            open_next(sock)
        else:
            selector.unregister(sock)
            sock.close()
            active -= 1
            open_next(None)

    cpu = time.process_time()
    started = time.perf_counter()
    for _ in range(concurrency):
        open_next(None)
    while active:
        for key, events in selector.select(timeout=10):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            entry = state[sock]
            if events & selectors.EVENT_WRITE:
                try:
                    sent = sock.send(entry[2])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    finish(sock, keep=False, ok=False)
                    continue
                entry[2] = entry[2][sent:]
                if not entry[2]:
                    selector.modify(sock, selectors.EVENT_READ)
                continue
            try:
                chunk = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                finish(sock, keep=False, ok=False)
                continue
            entry[3] += chunk
            data = entry[3]
            end = data.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = bytes(data[:end]).lower()
            length = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            if length is None or len(data) < end + 4 + int(length.group(1)):
                continue
            ok = head.startswith((b"http/1.1 200", b"http/1.0 200"))
            finish(sock, keep=b"\r\nconnection: close" not in head, ok=ok)
    result.seconds = time.perf_counter() - started
    result.cpu = time.process_time() - cpu
    selector.close()
    return result


def aiohttp_load(host: str, port: int, first: int, requests: int, concurrency: int) -> LoadResult:
    """The earlier client: aiohttp, one coroutine per connection."""
    import aiohttp

    from tertulia.messaging.channels.whatsapp.signature import SIGNATURE_HEADER, sign

    url = f"http://{host}:{port}{PATH}"
    bodies = [body(first + n) for n in range(requests)]
    headers = [
        {"Content-Type": "application/json", SIGNATURE_HEADER: sign(b, SECRET)} for b in bodies
    ]
    result = LoadResult()
    counter = iter(range(requests))

    async def worker(session: aiohttp.ClientSession) -> None:
        for n in counter:
            started = time.perf_counter()
            async with session.post(url, data=bodies[n], headers=headers[n]) as response:
                await response.read()
                if response.status == 200:
                    result.latencies.append(time.perf_counter() - started)
                    result.answered.append(first + n)
                else:
                    result.failed += 1

    async def run() -> None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))

    cpu = time.process_time()
    started = time.perf_counter()
    asyncio.run(run())
    result.seconds = time.perf_counter() - started
    result.cpu = time.process_time() - cpu
    return result


def paced(host: str, port: int, first: int, count: int, every: float) -> int:
    """One POST at a time every `every` seconds (a quiet hour's men); returns how many got 200."""
    ok = 0
    for i in range(count):
        due = time.perf_counter() + every
        result = lean_load(host, port, first + i, 1, 1)
        ok += len(result.answered)
        time.sleep(max(0.0, due - time.perf_counter()))
    return ok


def child(env: dict[str, str], mode: str, *extra: str) -> str:
    return subprocess.run(
        [sys.executable, __file__, "--child", mode, *extra],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def cut(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--server", choices=SERVERS, default="web")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--threads", type=int, default=None, help="default: the server's own")
    parser.add_argument("--client", default="lean", choices=["lean", "aiohttp"])
    parser.add_argument("--handoff", type=int, default=200, help="paced POSTs (0: skip)")
    parser.add_argument("--handoff-every-ms", type=float, default=50.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None, help="for the routing tasks (optional)")
    parser.add_argument("--child", choices=["setup", "stored", "drain", "delays", "last-id"])
    parser.add_argument("--no-record", action="store_true")
    args, rest = parser.parse_known_args()
    children = {
        "setup": setup,
        "stored": stored_ids,
        "drain": drain,
        "delays": delays,
        "last-id": last_id,
    }
    if args.child:
        children[args.child]()
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    load_before = os.getloadavg()[0]
    database_url = args.database_url
    pg = ["-h", "127.0.0.1", "-U", "postgres"]
    if database_url is None:
        subprocess.run(["dropdb", *pg, "--if-exists", BENCH_DB], check=True)  # noqa: S607
        subprocess.run(["createdb", *pg, BENCH_DB], check=True)  # noqa: S607
        database_url = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
    env = dict(os.environ, DATABASE_URL=database_url, LOG_LEVEL="ERROR")
    env.pop("REDIS_URL", None)
    if args.redis_url:  # the view no longer touches Redis; processing's tasks may
        env["REDIS_URL"] = args.redis_url
    child(env, "setup")

    load = lean_load if args.client == "lean" else aiohttp_load
    drainer = None
    handoff: dict[str, list[float] | int] | None = None
    serving = describe(args.server, args.workers, args.threads)
    with serve(
        env, ready=PATH, server=args.server, workers=args.workers, threads=args.threads
    ) as base:
        host, _, port_text = base.removeprefix("http://").rpartition(":")
        port = int(port_text)
        try:
            warm = load(host, port, WARMUP_FIRST, WARMUP, args.concurrency)
            run = load(host, port, 0, args.requests, args.concurrency)
            stored = set(json.loads(child(env, "stored")))
            if args.handoff:
                first_id = int(child(env, "last-id"))
                drainer = subprocess.Popen(  # noqa: S603
                    [sys.executable, __file__, "--child", "drain"], env=env, cwd=ROOT
                )
                time.sleep(3)  # Django set up, the loop polling
                paced(host, port, HANDOFF_FIRST, args.handoff, args.handoff_every_ms / 1000)
                time.sleep(1)
                handoff = json.loads(child(env, "delays", str(first_id)))
        finally:
            if drainer is not None:
                drainer.terminate()
                drainer.wait(20)
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).delete("rq:queue:default")  # routing tasks
    if args.database_url is None:
        subprocess.run(["dropdb", *pg, "--if-exists", BENCH_DB], check=False)  # noqa: S607

    answered = len(run.answered)
    rate = answered / run.seconds
    p50, p99 = cut(run.latencies, 50) * 1000, cut(run.latencies, 99) * 1000
    lost = len(set(run.answered + warm.answered) - stored)
    client_share = run.cpu / run.seconds * 100
    lines = [
        f"{args.requests:,} distinct signed webhook POSTs (one inbound message each) from "
        f"{args.concurrency} concurrent connections to the real view, served by {serving} on "
        "PostgreSQL; each stored as an encrypted WebhookEvent, committed before the 200 "
        "(processing is not part of this figure). Targets: ≥ 1,500 requests/s, p99 ≤ 100 ms, "
        "none lost.",
        "",
        "| requests/s | p50 (ms) | p99 (ms) | answered 200 | refused or failed | lost |"
        " client CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {rate:,.0f} | {p50:.1f} | {p99:.1f} | {answered:,} | {run.failed} | {lost} | "
        f"{client_share:.0f}% of a core ({run.cpu / max(answered, 1) * 1e6:.0f} µs/request, "
        f"{args.client}) |",
        "",
        "Lost counts the requests answered 200 (warm-up of 500 included) whose message id is "
        "not in a stored body. The load generator runs on the same 2-core machine; its CPU is "
        f"measured in its own process. Load average (1 min): {load_before:.1f} before the run, "
        f"{os.getloadavg()[0]:.1f} after.",
    ]
    if handoff is not None:
        claimed = handoff["claimed"]
        processed = handoff["processed"]
        assert isinstance(claimed, list) and isinstance(processed, list)
        lines += [
            "",
            f"Hand-off: {args.handoff} POSTs, one every {args.handoff_every_ms:.0f} ms, with one "
            "worker process running the webhook loop (`tertulia worker`'s thread). Delay from "
            "stored to claimed by the worker, and to processed (the Message stored, its routing "
            "queued):",
            "",
            "| | p50 (ms) | p99 (ms) | max (ms) |",
            "|---|---:|---:|---:|",
        ]
        if claimed:
            lines.append(
                f"| stored → claimed | {cut(claimed, 50):.1f} | {cut(claimed, 99):.1f} | "
                f"{max(claimed):.1f} |"
            )
            lines.append(
                f"| stored → processed | {cut(processed, 50):.1f} | {cut(processed, 99):.1f} | "
                f"{max(processed):.1f} |"
            )
        lines.append(f"\nNot processed a second after the last POST: {handoff['pending']}.")
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        from bench._results import record

        command_line = " ".join(["python", "bench/inbound.py", *sys.argv[1:]])
        record("inbound", text, command=command_line)


if __name__ == "__main__":
    main()
