"""Grouping program-arm men into cohorts, as a pure function over candidates.

Men are grouped by preferred send time and region, in the order they were assigned. A group
opens a cohort each time it has `capacity` men; what is left waits until it fills, or opens
anyway on its date (its first man's assignment date + `open_after_days`, or a date given).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

_TIME = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*(h|hrs?)?\s*$", re.IGNORECASE)


def send_time_parse(text: str) -> dt.time:
    """'19:00', '7:30' or '19h' as a time; ValueError saying what to write otherwise."""
    match = _TIME.match(text or "")
    if match:
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        if hour < 24 and minute < 60:
            return dt.time(hour, minute)
    raise ValueError(f"'{text}' is not a time of day; write it as HH:MM, e.g. 19:00")


@dataclass(frozen=True)
class Candidate:
    participant_id: int
    send_time: dt.time
    region: str
    assigned_on: dt.date


@dataclass(frozen=True)
class Group:
    send_time: dt.time
    region: str
    participant_ids: tuple[int, ...]
    waiting_since: dt.date
    opens_on: dt.date | None = None  # for a group still waiting
    reason: str = ""  # for a cohort to open: "full" or "date"

    @property
    def size(self) -> int:
        return len(self.participant_ids)


@dataclass
class Plan:
    to_open: list[Group] = field(default_factory=list)
    waiting: list[Group] = field(default_factory=list)


def cohorts_plan(
    candidates: Iterable[Candidate],
    *,
    capacity: int,
    open_after_days: int,
    today: dt.date,
    open_on: dt.date | None = None,
) -> Plan:
    """Which cohorts to open today, and who keeps waiting. `open_on`, when given, replaces
    each group's own date."""
    if capacity < 1:
        raise ValueError("a cohort's capacity must be 1 or more")
    groups: dict[tuple[dt.time, str], list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        groups[(candidate.send_time, candidate.region)].append(candidate)
    plan = Plan()
    for (send_time, region), members in sorted(groups.items()):
        members.sort(key=lambda c: (c.assigned_on, c.participant_id))
        for start in range(0, len(members), capacity):
            chunk = members[start : start + capacity]
            ids = tuple(c.participant_id for c in chunk)
            since = chunk[0].assigned_on
            if len(chunk) == capacity:
                plan.to_open.append(Group(send_time, region, ids, since, reason="full"))
                continue
            opens_on = open_on or since + dt.timedelta(days=open_after_days)
            if today >= opens_on:
                plan.to_open.append(Group(send_time, region, ids, since, reason="date"))
            else:
                plan.waiting.append(Group(send_time, region, ids, since, opens_on=opens_on))
    return plan
