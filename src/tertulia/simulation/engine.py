"""Runs cohorts of simulated men through their program in simulated time, through the real
scheduler, sender, tasks and router: only the men and their phones are simulated."""

from __future__ import annotations

import datetime as dt
import heapq
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from tertulia.cohorts.models import Cohort
from tertulia.core import clock as clock_module
from tertulia.core.clock import SimulatedClock
from tertulia.messaging.models import Message
from tertulia.messaging.services import Inbound, message_record_inbound, message_status_update
from tertulia.messaging.tasks import route_inbound_task, schedule_due_task
from tertulia.messaging.worker import run_until_idle
from tertulia.simulation.models import SimulatedDelivery
from tertulia.simulation.population import FREE_TEXTS, Behaviour, SimulatedMan

CHANNEL = "simulated"


@dataclass(order=True)
class Event:
    at: dt.datetime
    seq: int
    kind: str = field(compare=False)  # read | button | text
    phone: str = field(compare=False)
    provider_id: str = field(compare=False, default="")
    text: str = field(compare=False, default="")
    button_id: str = field(compare=False, default="")
    button_title: str = field(compare=False, default="")


class Simulation:
    def __init__(
        self,
        *,
        cohorts: list[Cohort],
        men: list[SimulatedMan],
        behaviour: Behaviour,
        topic_of_day: dict[int, str],
        timezone: str = "America/Lima",
    ) -> None:
        self.cohorts = cohorts
        self.men = {m.phone: m for m in men}
        self.behaviour = behaviour
        self.topic_of_day = topic_of_day
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.cursor = 0
        self.seq = 0
        self.inbound_seq = 0
        self.days = max(topic_of_day) + 1

    def run(self, on_day: Callable[[int], None] | None = None) -> None:
        start = min(c.start_date for c in self.cohorts)
        send_time = min(c.send_time for c in self.cohorts)
        first_send = dt.datetime.combine(start, send_time, tzinfo=self.zone)
        clock = SimulatedClock(first_send - dt.timedelta(minutes=1))
        previous = clock_module.use(clock)
        try:
            # One more day than the program, so that its end is recorded.
            for day in range(self.days + 1):
                at = first_send + dt.timedelta(days=day)
                clock.set(at)
                schedule_due_task.enqueue(at.isoformat())
                run_until_idle()
                events = self._react(day)
                while events:
                    event = heapq.heappop(events)
                    clock.set(max(clock.now(), event.at))
                    self._inject(event)
                run_until_idle()
                if on_day:
                    on_day(day)
        finally:
            clock_module.use(previous)

    def _react(self, day: int) -> list[Event]:
        """What each man does with what was delivered to him today."""
        deliveries = list(SimulatedDelivery.objects.filter(id__gt=self.cursor).order_by("id"))
        if deliveries:
            self.cursor = deliveries[-1].id
        sent_at = dict(
            Message.objects.filter(id__in=[d.message_id for d in deliveries]).values_list(
                "id", "sent_at"
            )
        )
        per_man: dict[str, list[SimulatedDelivery]] = defaultdict(list)
        for delivery in deliveries:
            per_man[delivery.to].append(delivery)
        b = self.behaviour
        events: list[Event] = []
        affinity = b.topic_affinity.get(self.topic_of_day.get(day, ""), 1.0)
        for phone in sorted(per_man):
            man = self.men.get(phone)
            if man is None or man.silent or man.opted_out:
                continue
            got = per_man[phone]
            rng = man.rng
            t0 = sent_at.get(got[-1].message_id) or got[-1].accepted_at

            def later(t: dt.datetime, rng=rng) -> dt.datetime:
                return t + dt.timedelta(minutes=rng.expovariate(1 / b.reply_delay_minutes))

            if rng.random() < b.daily_dropout_hazard:
                man.silent = True
                continue
            if rng.random() < b.daily_optout(self.days):
                man.opted_out = True
                events.append(self._event(later(t0), "text", phone, text="BAJA"))
                continue
            if rng.random() >= b.read_probability:
                continue
            read_at = later(t0)
            events.append(self._event(read_at, "read", phone, provider_id=got[-1].provider_id))
            checkin = next((d for d in got if d.kind == "buttons"), None)
            if checkin and rng.random() < min(man.reply_probability * affinity, 1.0):
                button = rng.choice(checkin.buttons)
                events.append(
                    self._event(
                        later(read_at),
                        "button",
                        phone,
                        button_id=button["id"],
                        button_title=button["title"],
                    )
                )
            if rng.random() < b.free_text_probability:
                events.append(
                    self._event(later(read_at), "text", phone, text=rng.choice(FREE_TEXTS))
                )
            if rng.random() < b.help_probability:
                events.append(self._event(later(read_at), "text", phone, text="AYUDA"))
        heapq.heapify(events)
        return events

    def _event(self, at: dt.datetime, kind: str, phone: str, **fields: str) -> Event:
        self.seq += 1
        return Event(at=at, seq=self.seq, kind=kind, phone=phone, **fields)

    def _inject(self, event: Event) -> None:
        if event.kind == "read":
            message_status_update(
                channel=CHANNEL, provider_id=event.provider_id, status="read", at=event.at
            )
            return
        self.inbound_seq += 1
        message, created = message_record_inbound(
            Inbound(
                channel=CHANNEL,
                address=event.phone,
                provider_id=f"sim-in-{self.men[event.phone].index}-{self.inbound_seq}",
                received_at=event.at,
                kind="button" if event.kind == "button" else "text",
                text=event.text,
                button_id=event.button_id,
                button_title=event.button_title,
            )
        )
        if created:
            route_inbound_task.enqueue(message.pk, event.at.isoformat())
