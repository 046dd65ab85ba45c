"""Concurrent enrolments on PostgreSQL: worker processes assign men at the same moment, and no
two assignments take the same block slot (decision 0076).

The suite's SQLite run skips this (SQLite runs one writer at a time by design); CI runs the
suite again on PostgreSQL, where it must run."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections import Counter
from typing import Any

import pytest
from django.db import connection, connections

from tertulia.randomization.models import Assignment, Stratum
from tertulia.randomization.services import assignment_make, assignments_verify
from tests.conftest import require_service

pytestmark = pytest.mark.postgres

WORKERS = 8
MEN = 400
STRATUM = {"region": "lima", "cohabiting": "yes", "send_time": "19:00"}


def _require_postgresql() -> None:
    if connection.vendor == "postgresql":
        require_service("PostgreSQL", connection.is_usable() or _reconnects())
        return
    pytest.skip("needs PostgreSQL: runs when DATABASE_URL=postgres://... (the CI's second run)")


def _reconnects() -> bool:
    connection.close()
    try:
        connection.ensure_connection()
    except Exception:
        return False
    return True


def _assign(
    trial_id: int,
    ids: list[int],
    shared_id: int,
    other_stratum: bool,
    barrier: Any,
    out: Any,
) -> None:
    """One worker process: all start together, on the shared man first, then on their own."""
    from tertulia.cohorts.models import Participant
    from tertulia.randomization.models import Trial

    connections.close_all()  # never use a connection inherited from the parent
    try:
        trial = Trial.objects.get(pk=trial_id)
        men = Participant.objects.in_bulk([shared_id, *ids])
        shared_strata = {"region": "norte", "cohabiting": "no"} if other_stratum else STRATUM
        barrier.wait(timeout=60)
        made = [assignment_make(trial=trial, participant=men[shared_id], strata=shared_strata)]
        made += [assignment_make(trial=trial, participant=men[i], strata=STRATUM) for i in ids]
        out.put(("ok", [(a.pk, a.participant_id) for a in made]))
    except Exception as exc:  # reported to the test, which fails on it
        out.put(("error", repr(exc)))
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_never_share_a_slot_and_complete_balanced_blocks(trial, men) -> None:  # type: ignore[no-untyped-def]
    _require_postgresql()
    shared, *everyone = men(MEN + 1)
    ids = [m.pk for m in everyone]
    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WORKERS)
    out = context.Queue()
    workers = [
        context.Process(
            target=_assign,
            args=(trial.pk, ids[w::WORKERS], shared.pk, w % 2 == 1, barrier, out),
        )
        for w in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    results = []
    for _ in workers:
        try:
            results.append(out.get(timeout=180))
        except queue_module.Empty:
            pytest.fail("a worker did not finish within 3 minutes")
    for worker in workers:
        worker.join(timeout=30)
    assert [r for r in results if r[0] != "ok"] == []

    # The shared man was assigned once, and every worker got that one assignment back.
    shared_rows = {made[0] for status, made in results}
    assert len(shared_rows) == 1
    assert Assignment.objects.filter(participant=shared).count() == 1

    key = "region=lima|cohabiting=yes"
    rows = list(Assignment.objects.filter(stratum=key).order_by("slot"))
    in_lima = MEN + (1 if shared_rows.pop()[0] in {r.pk for r in rows} else 0)
    assert len(rows) == in_lima
    assert [r.slot for r in rows] == list(range(in_lima))  # unique and without gaps
    assert Stratum.objects.get(key=key).next_slot == in_lima

    blocks: dict[int, Counter[str]] = {}
    for row in rows:
        blocks.setdefault(row.block_index, Counter())[row.arm] += 1
    last = max(blocks)
    for index, counts in blocks.items():
        if index < last:
            assert counts["program"] == counts["control"], f"block {index} is unbalanced"
    assert assignments_verify(trial=trial) == []
