"""Benchmark: sustained WhatsApp messages per second through the whole outbound path.

Outbox rows -> N sender processes (claim, Message rows, the shared rate limiter in Redis,
HTTP to the fake Cloud API, status rows) on PostgreSQL + Redis, next to the ceiling of a bare
aiohttp client posting ready-made payloads to the same fake in the same run. The fake runs in
its own process (`tertulia fake-whatsapp`); its own counters say how many messages it
accepted, whether any came twice, and the most it saw in one sliding second.

    python bench/outbound.py [--messages 20000] [--workers 2] [--rate 1000]
        [--database-url postgres://...] [--redis-url redis://...]

Without --database-url it creates (and drops) the PostgreSQL database `tertulia_bench_out`;
with it, it migrates that database and empties its tables first. It ends with two lines,
`full-path: N msg/s` and `ceiling: N msg/s`, and records them in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "tertulia_bench_out"
TOKEN = "bench-token"  # noqa: S105 - the fake's, not a credential
SECRET = "bench-app-secret"  # noqa: S105
PHONE_NUMBER_ID = "100000000000001"


def setup(messages: int, base_url: str, rate: int) -> None:
    """Child: migrate, empty, then one text per man queued on whatsapp:bench."""
    import datetime as dt

    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from django.core.management import call_command
    from django.db import transaction

    from tertulia.cohorts.models import Participant
    from tertulia.messaging.models import ChannelConfig, Outbox

    call_command("flush", interactive=False, verbosity=0)
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic():
        ChannelConfig.objects.create(
            name="bench",
            phone_number_id=PHONE_NUMBER_ID,
            access_token=TOKEN,
            app_secret=SECRET,
            verify_token="bench",  # noqa: S106 - the fake's
            base_url=base_url,
            messages_per_second=rate,
            # The benchmark's men never wrote to us: with the 24-hour window enforced, every
            # send would wait for a message of theirs. The fake does not enforce it either.
            service_window=False,
        )
        for offset in range(0, messages, 5000):
            people = Participant.objects.bulk_create(
                Participant(phone=f"+5197{n:07d}", phone_hash=f"bench{n}")
                for n in range(offset, min(messages, offset + 5000))
            )
            Outbox.objects.bulk_create(
                Outbox(
                    participant=p,
                    body="Hola, hoy toca respirar hondo tres veces antes de responder.",
                    channel="whatsapp:bench",
                    due_at=now,
                    created_at=now,
                )
                for p in people
            )


def worker(batch: int) -> None:
    """Child: a sender process; starts on a line from stdin, drains the Outbox, reports."""
    import datetime as dt

    from tertulia.cli import setup_django

    setup_django()
    from tertulia.messaging.models import Outbox
    from tertulia.messaging.sender import outbox_send_batch

    print("ready", flush=True)
    sys.stdin.readline()
    totals = {"sent": 0, "paced": 0, "retried": 0, "failed": 0, "unknown": 0, "batches": 0}
    while True:
        report = outbox_send_batch(now=dt.datetime.now(dt.UTC), limit=batch)
        if report.claimed == 0:
            left = Outbox.objects.filter(status__in=[Outbox.Status.QUEUED, Outbox.Status.SENDING])
            if not left.exists():
                break
            time.sleep(0.05)  # another worker holds the last rows, or they are paced
            continue
        totals["batches"] += 1
        for key in ("sent", "paced", "retried", "failed", "unknown"):
            totals[key] += getattr(report, key)
    print(json.dumps(totals), flush=True)


def start_fake(log_path: Path) -> tuple[subprocess.Popen[str], str]:
    fake = subprocess.Popen(  # noqa: S603 - our own CLI
        [str(Path(sys.executable).parent / "tertulia"), "fake-whatsapp", "--port", "0"]
        + ["--token", TOKEN, "--app-secret", SECRET, "--phone-number-id", PHONE_NUMBER_ID]
        + ["--log-path", str(log_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert fake.stdout is not None
    line = fake.stdout.readline()
    return fake, line.rsplit(" ", 1)[-1].strip()


def max_per_second(log_path: Path) -> int:
    """The most of our messages (those with a reference) the fake accepted in any sliding
    second, from its own log."""
    times = sorted(
        entry["received_at"]
        for entry in map(json.loads, log_path.read_text().splitlines())
        if entry["reference"] is not None
    )
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def fake_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/_fake/stats", timeout=30) as response:  # noqa: S310
        return json.load(response)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=int, default=1000, help="the channel's messages/s")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--ceiling-messages", type=int, default=20_000)
    parser.add_argument("--child", choices=["setup", "worker"])
    parser.add_argument("--base-url", default="")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.child == "setup":
        setup(args.messages, args.base_url, args.rate)
        return
    if args.child == "worker":
        worker(args.batch)
        return
    if not args.redis_url:
        sys.exit("give --redis-url (or set REDIS_URL): the senders share the rate limit there")

    database_url = args.database_url
    if database_url is None:
        pg = ["-h", "127.0.0.1", "-U", "postgres"]
        subprocess.run(["dropdb", *pg, "--if-exists", BENCH_DB], check=True)  # noqa: S607
        subprocess.run(["createdb", *pg, BENCH_DB], check=True)  # noqa: S607
        database_url = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
    # Keys and media in var/ as usual; the database and Redis as given.
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=args.redis_url, LOG_LEVEL="ERROR")
    me = [sys.executable, __file__]

    log_path = Path(tempfile.mkdtemp()) / "fake-log.jsonl"
    fake, base_url = start_fake(log_path)
    try:
        from tertulia.messaging.channels.whatsapp.loadgen import measure_ceiling

        ceiling = asyncio.run(
            measure_ceiling(
                base_url,
                token=TOKEN,
                phone_number_id=PHONE_NUMBER_ID,
                messages=args.ceiling_messages,
            )
        )
        print(f"bare aiohttp client: {ceiling.sent} in {ceiling.seconds:.1f} s")
        accepted_before = fake_stats(base_url)["accepted"]

        started = time.perf_counter()
        subprocess.run(
            [*me, "--child", "setup", "--messages", str(args.messages), "--base-url", base_url]
            + ["--rate", str(args.rate)],
            env=env,
            cwd=ROOT,
            check=True,
        )
        print(f"set-up: {args.messages:,} outbox rows in {time.perf_counter() - started:.1f} s")
        # The rate limiter's buckets start full.
        import redis

        connection = redis.Redis.from_url(args.redis_url)
        for key in connection.scan_iter("tertulia:rate:*"):
            connection.delete(key)

        workers = [
            subprocess.Popen(  # noqa: S603 - this script
                [*me, "--child", "worker", "--batch", str(args.batch)],
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.workers)
        ]
        for process in workers:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        started = time.perf_counter()
        for process in workers:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in workers:
            assert process.stdout is not None
            reports.append(json.loads(process.stdout.readline()))
            process.wait(60)
        seconds = time.perf_counter() - started
        stats = fake_stats(base_url)
    finally:
        fake.terminate()
        fake.wait(10)
        if args.database_url is None:
            subprocess.run(
                ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", BENCH_DB],
                check=False,
            )  # noqa: S607

    accepted = stats["accepted"] - accepted_before
    peak = max_per_second(log_path)
    sent = sum(r["sent"] for r in reports)
    full_path = sent / seconds
    totals = {k: sum(r[k] for r in reports) for k in reports[0]}
    print(f"workers: {totals}")
    print(f"fake: accepted {accepted:,}, duplicates {stats['duplicate_references']}")
    lines = [
        f"{args.messages:,} text messages queued in the Outbox on PostgreSQL, drained by "
        f"{args.workers} sender processes (batches of {args.batch}) sharing the rate limiter in "
        f"Redis, to the fake Cloud API in its own process. The channel's rate limit is set to "
        f"{args.rate:,} messages/s (the most a number may have); the limiter paces at 80% of it "
        "(docs/decisions/0037-whatsapp-rate-limits.md), so the full path cannot exceed "
        f"{0.8 * args.rate:,.0f} msg/s here. Target: ≥ 1,000 msg/s and ≥ 50% of the ceiling.",
        "",
        "| what | messages | seconds | msg/s |",
        "|---|---:|---:|---:|",
        f"| full path (outbox → limiter → HTTP → status row) | {sent:,} | {seconds:.1f} | "
        f"{full_path:,.0f} |",
        f"| ceiling: bare aiohttp client, same fake, same run | {ceiling.sent:,} | "
        f"{ceiling.seconds:.1f} | {ceiling.per_second:,.0f} |",
        "",
        f"Full path / ceiling: {full_path / ceiling.per_second:.0%}. The fake accepted "
        f"{accepted:,} messages, {stats['duplicate_references']} twice; the most in one sliding "
        f"second, on its own log, was {peak:,} (limit {args.rate:,}). Sender totals: "
        f"{totals['sent']:,} sent, {totals['paced']:,} paced again (missed moment), "
        f"{totals['retried']:,} retried, {totals['failed']:,} failed in {totals['batches']} "
        "batches. The 2-core machine was shared with other work during the run.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        from bench._results import record

        command = "python bench/outbound.py --redis-url redis://127.0.0.1:6379/<n>"
        if args.messages != 20_000 or args.workers != 2:
            command += f" --messages {args.messages} --workers {args.workers}"
        record("outbound", body, command=command)
    print(f"full-path: {full_path:.0f} msg/s")
    print(f"ceiling: {ceiling.per_second:.0f} msg/s")


if __name__ == "__main__":
    main()
