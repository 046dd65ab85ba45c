"""The time, asked in one place so that the demo and the tests can run a program in
simulated time with exactly the code that runs it in real time."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class SimulatedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a simulated clock needs an aware datetime")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> None:
        if when < self._now:
            raise ValueError("a simulated clock does not go back in time")
        self._now = when

    def advance(self, delta: dt.timedelta) -> None:
        self.set(self._now + delta)


_clock: Clock = SystemClock()


def now() -> dt.datetime:
    return _clock.now()


def use(clock: Clock) -> Clock:
    """Install `clock` as the process clock and return the previous one."""
    global _clock
    previous, _clock = _clock, clock
    return previous
