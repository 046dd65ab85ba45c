"""Benchmark: the community relay under load, end to end through the fake WhatsApp Cloud API.

20 cohorts of 50 men, every man inside his 24-hour window. In each round one member of every
cohort posts at the same moment (20 posts at once); each post is relayed to the other 49. The
figure is, per post, the time from the fake sending its webhook to the last of the 49 relayed
sends accepted by the fake. Target: p99 <= 2 s.

Everything but Meta is production code: the signed webhook view (served in its own processes
by `tertulia web`, as deployed; --server gunicorn to compare), the webhook store,
the task queue (database backend, or RQ with --redis-url) drained by `tertulia worker`
processes, the router, safety triage, the relay, the sender and the WhatsApp channel.
Delivery statuses (sent, delivered, read) flow back by webhook during the run, as they would.

The number's rate is Meta's highest tier, 1,000 messages/s (--rate), paced at 80% by the
limiter: a burst of 20 x 49 = 980 sends needs 1.23 s of pacing alone, so the 2 s target leaves
~0.8 s for everything else, and a burst larger than one number's rate cannot meet it. On the
database queue each worker process has its own limiter, so each gets 1/N of the rate; on RQ
they share one in Redis.

    python bench/relay.py [--rounds 10] [--cohorts 20] [--members 50] [--workers 2]
    python bench/relay.py --redis-url redis://127.0.0.1:6379/N   # RQ; that Redis db is emptied

RELAY_BENCH_FAKE_LOG=FILE keeps the fake's log of accepted sends (JSONL, without bodies), to
see how a burst's sends were spread over time.

It runs on a PostgreSQL database of its own (created and dropped: tertulia_relay_bench), or on
the scratch database given with --database-url (emptied first; never your DATABASE_URL by
accident). Without PostgreSQL it runs on a temporary SQLite file with one worker.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._serve import SERVERS, describe, serve  # noqa: E402

CHANNEL = "relaybench"
PG_HOST = ["-h", "127.0.0.1", "-U", "postgres"]
PG_BENCH = "postgres://postgres@127.0.0.1:5432/tertulia_relay_bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def setup_data(cohorts: int, members: int) -> dict[str, list[str]]:
    """The cohorts, their men (each with a message an hour ago: his window is open) and their
    memberships. Returns each cohort's men's numbers, without the '+'."""
    import datetime as dt

    from django.db import transaction

    from tertulia.cohorts.models import Enrollment, Participant
    from tertulia.cohorts.services import cohort_create
    from tertulia.community.models import Membership
    from tertulia.core import clock, crypto
    from tertulia.messaging.models import Message
    from tertulia.programs.services import curriculum_import

    curriculum = curriculum_import(path=ROOT / "content" / "guy-talk" / "es-PE").curriculum
    now = clock.now()
    numbers: dict[str, list[str]] = {}
    with transaction.atomic():
        for c in range(cohorts):
            cohort = cohort_create(
                curriculum=curriculum,
                name=f"Relay bench {c}",
                start_date=now.date() + dt.timedelta(days=1),
                channel=f"whatsapp:{CHANNEL}",
                capacity=members,
            )
            phones = [f"+519{c:03d}{n:05d}" for n in range(members)]
            people = Participant.objects.bulk_create(
                Participant(phone=p, phone_hash=crypto.lookup_hash(p)) for p in phones
            )
            enrollments = Enrollment.objects.bulk_create(
                Enrollment(participant=p, cohort=cohort, enrolled_at=now) for p in people
            )
            Membership.objects.bulk_create(
                Membership(enrollment=e, cohort=cohort, pseudonym=f"Pata {i + 1}", joined_at=now)
                for i, e in enumerate(enrollments)
            )
            Message.objects.bulk_create(
                Message(
                    direction=Message.Direction.IN,
                    participant=p,
                    channel=f"whatsapp:{CHANNEL}",
                    body="hola",
                    status=Message.Status.ROUTED,
                    created_at=now - dt.timedelta(hours=1),
                )
                for p in people
            )
            numbers[str(cohort.pk)] = [p[1:] for p in phones]
    return numbers


def settle(fake: object, timeout: float) -> None:
    """Let the round's delivery statuses and tasks drain, so each round measures a burst of
    posts at once and not the previous round's backlog."""
    from django.conf import settings
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        idle = fake.wait_idle(1)  # type: ignore[attr-defined]
        if getattr(settings, "REDIS_URL", None):
            import django_rq

            queues = [django_rq.get_queue(name) for name in settings.RQ_QUEUES]
            busy = any(q.count or q.started_job_registry.count for q in queues)
        else:
            from django_tasks_db.models import DBTaskResult

            busy = DBTaskResult.objects.exclude(status__in=["SUCCESSFUL", "FAILED"]).exists()
        if idle and not busy:
            break
        time.sleep(0.5)
    connection.close()


def cpu_used() -> float:
    """CPU seconds of this process and of its children that have ended (the workers and the
    web server are waited for before the figures are written)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    tertulia = str(Path(sys.executable).with_name("tertulia"))
    return [
        subprocess.Popen(
            [tertulia, "worker", "--no-scheduler"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def run(
    rounds: int,
    cohorts: int,
    members: int,
    workers: int,
    gap: float,
    statuses: tuple[str, ...],
    rate: int,
    server: str,
) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from tertulia.cli import setup_django

    setup_django()
    call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", interactive=False, verbosity=0)
    from django.conf import settings

    if getattr(settings, "REDIS_URL", None):
        import django_rq

        django_rq.get_queue("default").connection.flushdb()
    from tertulia.messaging.channels.whatsapp.demo import DEMO_SECRET, DEMO_TOKEN
    from tertulia.messaging.channels.whatsapp.fake_server import run_fake_whatsapp
    from tertulia.messaging.models import ChannelConfig

    vendor = connection.vendor
    setup_started = time.perf_counter()
    numbers = setup_data(cohorts, members)
    setup_seconds = time.perf_counter() - setup_started
    connection.close()

    latencies: list[float] = []
    firsts: list[float] = []  # to the first copy accepted: routing's share of the latency
    missing = 0
    started = time.perf_counter()
    with (
        # Its own processes, as deployed: in this process it would share the interpreter
        # lock with the fake, which stands for Meta's servers, and slow the fake's answers.
        serve(dict(os.environ), ready=f"/webhooks/whatsapp/{CHANNEL}/", server=server) as site,
        run_fake_whatsapp(
            token=DEMO_TOKEN,
            app_secret=DEMO_SECRET,
            webhook_url=f"{site}/webhooks/whatsapp/{CHANNEL}/",
            seed=7,
            statuses=statuses,
            log_path=os.environ.get("RELAY_BENCH_FAKE_LOG") or None,
        ) as fake,
    ):
        ChannelConfig.objects.update_or_create(
            name=CHANNEL,
            defaults={
                "phone_number_id": fake.phone_number_id,
                "access_token": DEMO_TOKEN,
                "app_secret": DEMO_SECRET,
                "verify_token": "bench",
                "base_url": fake.base_url,
                "messages_per_second": rate,
            },
        )
        connection.close()
        procs = start_workers(workers, dict(os.environ))
        try:
            time.sleep(3)  # the workers start Django and migrate-check
            seen = 0
            for r in range(-1, rounds):  # round -1 warms the workers up, unmeasured
                sent_at: dict[str, float] = {}
                for c, (cohort_id, phones) in enumerate(numbers.items()):
                    token = f"r{r + 1}c{cohort_id}"
                    author = phones[(r * 7 + c) % len(phones)]
                    sent_at[token] = time.time()
                    fake.send_inbound(author, f"Hoy probé respirar antes de contestar ({token})")
                expected = seen + len(numbers) * (members - 1)
                fake.log.wait_for(expected, timeout=60)
                last: dict[str, float] = {}
                first: dict[str, float] = {}
                count: dict[str, int] = {}
                for entry in fake.log.entries()[seen:]:
                    body = str(entry.payload.get("text", {}).get("body", ""))
                    for token in sent_at:
                        if f"({token})" in body:
                            last[token] = max(last.get(token, 0.0), entry.received_at)
                            first[token] = min(
                                first.get(token, entry.received_at), entry.received_at
                            )
                            count[token] = count.get(token, 0) + 1
                for token, t0 in sent_at.items():
                    if r < 0:
                        continue
                    if count.get(token, 0) == members - 1:
                        latencies.append(last[token] - t0)
                        firsts.append(first[token] - t0)
                    else:
                        missing += 1
                seen = len(fake.log)
                slowest = max(last.values(), default=0.0) - min(sent_at.values())
                starts = sorted(first[t] - sent_at[t] for t in first)
                print(
                    f"round {r + 1}/{rounds}: slowest post {slowest:.2f} s; first copies after "
                    + " ".join(f"{x:.2f}" for x in starts),
                    flush=True,
                )
                settle(fake, timeout=120)
                if r < 0 and vendor == "postgresql":
                    # The tables were filled moments ago and autovacuum has not looked at
                    # them yet: without statistics the planner scans every message to find
                    # one by its provider id. A program's database has been analyzed long
                    # before a burst like this one.
                    with connection.cursor() as cursor:
                        cursor.execute("ANALYZE")
                    connection.close()
                time.sleep(gap)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
        busiest = fake.log.max_rate(1.0)
    return {
        "vendor": vendor,
        "queue": "RQ (Redis)" if os.environ.get("REDIS_URL") else "database",
        "latencies": latencies,
        "firsts": firsts,
        "missing": missing,
        "setup_seconds": setup_seconds,
        "seconds": time.perf_counter() - started,
        "sends": len(latencies) * (members - 1),
        "busiest_second": busiest,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--cohorts", type=int, default=20)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gap", type=float, default=1.0, help="Seconds between rounds.")
    parser.add_argument(
        "--statuses",
        default="sent,delivered,read",
        help="Delivery statuses the fake posts back for each send (comma-separated; '' none).",
    )
    parser.add_argument(
        "--rate",
        type=int,
        default=1000,
        help="The number's throughput, messages per second (Meta's highest tier is 1,000).",
    )
    parser.add_argument("--database-url", help="A scratch PostgreSQL database (emptied first).")
    parser.add_argument("--redis-url", help="Run the tasks on RQ with this Redis (emptied).")
    parser.add_argument(
        "--server", choices=SERVERS, default="web", help="What serves the webhooks."
    )
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--var-dir", help="Keep keys and files here (to inspect the run after).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.var_dir:
            Path(args.var_dir).mkdir(parents=True, exist_ok=True)
        os.environ["TERTULIA_VAR_DIR"] = args.var_dir or tmp
        # The database queue by default; --redis-url runs the at-scale queue (RQ) instead.
        os.environ.pop("REDIS_URL", None)
        if args.redis_url:
            os.environ["REDIS_URL"] = args.redis_url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tertulia.settings")
        workers = args.workers
        own_database = False
        if args.database_url:
            os.environ["DATABASE_URL"] = args.database_url
        elif subprocess.run(["pg_isready", *PG_HOST], capture_output=True).returncode == 0:
            subprocess.run(["dropdb", *PG_HOST, "--if-exists", "tertulia_relay_bench"], check=True)
            subprocess.run(["createdb", *PG_HOST, "tertulia_relay_bench"], check=True)
            os.environ["DATABASE_URL"] = PG_BENCH
            own_database = True
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/relay.sqlite3"
            workers = 1
        statuses = tuple(s for s in args.statuses.split(",") if s)
        load_before = os.getloadavg()[0]
        cpu_before = cpu_used()
        try:
            # The embedded limiter lives in each worker process (only RQ's shares one through
            # Redis): on the database queue each of N workers gets 1/N of the number's rate,
            # so that together they stay within it.
            per_process = args.rate if args.redis_url else max(1, args.rate // workers)
            result = run(
                args.rounds,
                args.cohorts,
                args.members,
                workers,
                args.gap,
                statuses,
                per_process,
                args.server,
            )
        finally:
            if own_database:
                from django.db import connections

                connections.close_all()
                subprocess.run(["dropdb", *PG_HOST, "--if-exists", "tertulia_relay_bench"])

    load_after = os.getloadavg()[0]
    cpu = cpu_used() - cpu_before
    lat = result["latencies"]
    firsts = result["firsts"] or [0.0]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    met = "yes" if p99 <= 2.0 and not result["missing"] else "no"
    body = "\n".join(
        [
            f"{args.cohorts} cohorts of {args.members} men, all inside their 24-hour window; "
            f"{args.rounds} rounds in which one man in every cohort posts at the same moment "
            f"({args.cohorts} posts at once, each relayed to {args.members - 1} men); between "
            "rounds the previous round's statuses and tasks drain, and a first round warms the "
            "workers up unmeasured. Latency per "
            "post: from the fake Cloud API sending its webhook to the last relayed send it "
            f"accepted. {result['vendor']}, {result['queue']} task queue, {workers} `tertulia "
            f"worker` processes, webhooks served by {describe(args.server, None, None)}, "
            "delivery statuses (sent, delivered, read) flowing back by webhook, one POST "
            "each. Target: p99 ≤ 2 s.",
            "",
            "| posts | relayed sends | p50 (s) | p99 (s) | max (s) | mean (s) | first copy "
            "p50 / p99 (s) | incomplete | met |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
            f"| {len(lat)} | {result['sends']:,} | {p50:.2f} | {p99:.2f} | {max(lat):.2f} | "
            f"{statistics.fmean(lat):.2f} | {percentile(firsts, 50):.2f} / "
            f"{percentile(firsts, 99):.2f} | {result['missing']} | {met} |",
            "",
            f"The number's rate is set to {args.rate:,} messages/s (Meta's highest tier), paced "
            f"at 80%: a burst of {args.cohorts * (args.members - 1):,} sends takes at least "
            f"{args.cohorts * (args.members - 1) / (args.rate * 0.8):.2f} s of pacing alone, so a "
            "burst larger than one number's rate cannot meet 2 s (a program that size needs "
            "more numbers). "
            + (
                "RQ's workers share one limiter in Redis. "
                if args.redis_url
                else f"The embedded limiter lives in each worker, so each gets 1/{workers} of it. "
            )
            + f"Busiest second at the fake: {result['busiest_second']:,} sends.",
            "",
            f"Measured on a {os.cpu_count()}-core machine shared with other work (load average "
            f"{load_before:.1f} before, {load_after:.1f} after), the fake, the web server, the "
            "workers and PostgreSQL all on it. The first copy of a post leaves once it is routed; "
            "the posts of a burst then share the number's rate, one after another. Where the "
            "time goes and what was changed for it: docs/decisions/0051-relay-hot-path.md, "
            "0057-relay-in-the-webhook-task.md, 0099, 0101, 0102 and 0104.",
            "",
            f"CPU of the benchmark's processes over the whole run (the fake, the web server "
            f"and the workers, with the warm-up round and the statuses; PostgreSQL's not "
            f"counted): {cpu:.1f} s, {cpu / max(result['sends'], 1) * 1000:.2f} ms per relayed "
            "send.",
        ]
    )
    print(body)
    if not args.no_record:
        from bench._results import record

        command = " ".join(["python", "bench/relay.py", *sys.argv[1:]])
        record("relay (RQ)" if args.redis_url else "relay", body, command=command)


if __name__ == "__main__":
    main()
