"""Rate limits of a WhatsApp business number: its throughput and the pair limit.

Meta caps a number's throughput (`ChannelConfig.messages_per_second`, 80 by default, up to
1,000), counting the messages it receives as well as those it sends, and answers 130429 above
it; it also caps how often one person can be messaged (the pair limit, about one message every
6 seconds with short bursts allowed) and answers 131056 above that. Both are token buckets
here, in the GCRA form (a "theoretical arrival time" per bucket), so that a whole batch is
reserved in one atomic step:

- each recipient's bucket admits his messages of a batch now or says how long to wait: the
  sender puts those back in the queue (`PacedError`), it does not hold a worker for seconds;
- the number's bucket gives each request a moment to leave, reserved just in time by the
  sending loop in small chunks (`reserve`), spaced so that no sliding second ever holds more
  than the configured rate, with headroom for the time a request takes to reach Meta.

With `REDIS_URL` set, the buckets live in Redis and one Lua script admits a batch atomically,
so every worker process on every machine shares them; without it (the embedded default, one
process) they live in this process. The number's bucket runs on real time (the Redis server's
clock, or this process's monotonic clock); the pair buckets on the process clock
(`tertulia.core.clock`), so that a simulated program paces men in simulated time. Recipients
are keyed by a keyed hash, never by their phone number.
"""

from __future__ import annotations

import functools
import hmac
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tertulia.core import clock
from tertulia.messaging.channel import ChannelError

if TYPE_CHECKING:
    from tertulia.messaging.models import ChannelConfig

# Pace at 80% of the configured rate, with a burst of 2% of it. A request that wakes more than
# LATE_AFTER after its moment is not sent (it waits for a later batch), so a sliding second at
# the sender holds at most 0.02 + 0.80 * 1.05 = 86% of the rate even when a busy machine
# stalls a sender; the rest absorbs jitter after the request leaves (the network, a stalled
# front end reading a backlog at once). Measured on the fake on a loaded 2-core machine: 90%
# without the cut-off exceeded the rate by half; 85% with a 0.1 s cut-off by a few percent.
HEADROOM = 0.8
LATE_AFTER = 0.05
BURST_SHARE = 0.02
# The pair limit: one message every 6 s to the same person, bursts of up to 10 (Meta allows
# more; a program day is 3-5 messages).
PAIR_INTERVAL = 6.0
PAIR_BURST = 10
# After Meta answers 130429 (the number's throughput), nothing leaves the number for this
# long: its counting window is a second, so a second's pause lets it drain.
THROUGHPUT_HOLD = 1.0
KEY_PREFIX = "tertulia:rate"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """The buckets' parameters for one number: `interval` seconds between messages,
    `tolerance` seconds of burst (GCRA's tau), and the same two for each recipient."""

    interval: float
    tolerance: float
    pair_interval: float = PAIR_INTERVAL
    pair_tolerance: float = (PAIR_BURST - 1) * PAIR_INTERVAL

    @classmethod
    def for_rate(
        cls,
        messages_per_second: float,
        *,
        pair_interval: float = PAIR_INTERVAL,
        pair_burst: int = PAIR_BURST,
    ) -> Limits:
        if messages_per_second <= 0:
            raise ValueError("messages_per_second must be positive")
        interval = 1.0 / (messages_per_second * HEADROOM)
        burst = max(1, int(messages_per_second * BURST_SHARE))
        return cls(
            interval=interval,
            tolerance=(burst - 1) * interval,
            pair_interval=pair_interval,
            pair_tolerance=max(0, pair_burst - 1) * pair_interval,
        )


@dataclass(frozen=True)
class Admission:
    """What one batch may do: `pair_waits[i]` is 0 when message i is admitted, otherwise the
    seconds until its recipient's bucket allows it (it is not sent now)."""

    pair_waits: list[float]


class Limiter(Protocol):
    def admit(
        self, number: str, recipients: Sequence[tuple[str, int]], limits: Limits
    ) -> Admission:
        """Admit a batch: `recipients` holds (recipient, weight) per message, weight being the
        requests it takes (a long text split in parts)."""
        ...

    def admit_many(
        self, batches: Sequence[tuple[str, Sequence[tuple[str, int]], Limits]]
    ) -> list[Admission]:
        """`admit` for several numbers' batches at once (one round trip on Redis)."""
        ...

    def reserve(self, number: str, count: int, limits: Limits) -> list[float]:
        """New moments for `count` requests of a batch that fell behind its own."""
        ...

    def consume(self, number: str, count: int, limits: Limits) -> None:
        """Count `count` inbound messages against the number's throughput (never waits)."""
        ...

    def hold(self, number: str, seconds: float, recipients: Sequence[str], limits: Limits) -> None:
        """Meta said a limit was hit: with `seconds` > 0 nothing leaves the number for that
        long; each of `recipients` gets nothing for a pair interval (his burst is spent)."""
        ...

    def reset(self) -> None:
        """Forget every bucket (tests)."""
        ...


def recipient_key(recipient: str) -> str:
    """A keyed hash of a recipient: bucket keys must not hold phone numbers."""
    return hmac.digest(_recipient_hash_key(), recipient.encode(), "sha256").hex()[:24]


@functools.cache
def _recipient_hash_key() -> bytes:
    from django.conf import settings

    return str(settings.SECRET_KEY).encode()


def _schedule(start: float, first_delay: float, cells: int, limits: Limits) -> list[float]:
    """Send times of `cells` messages admitted together; `first_delay` is how far the number's
    theoretical arrival time was ahead of `start`."""
    return [
        start + max(0.0, first_delay + k * limits.interval - limits.tolerance) for k in range(cells)
    ]


def _pair_stale(tat: float, now: float, limits: Limits) -> bool:
    # A theoretical arrival time this far ahead was set by a clock that later went back (a
    # simulation, a test): it says nothing about now.
    return tat > now + limits.pair_tolerance + 100 * limits.pair_interval


class LocalLimiter:
    """The buckets in this process (the embedded default: one process sends)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers: dict[str, float] = {}
        self._pairs: dict[tuple[str, str], float] = {}

    def admit(
        self, number: str, recipients: Sequence[tuple[str, int]], limits: Limits
    ) -> Admission:
        pair_now = clock.now().timestamp()
        waits: list[float] = []
        with self._lock:
            for recipient, weight in recipients:
                key = (number, recipient_key(recipient))
                tat = self._pairs.get(key, 0.0)
                if _pair_stale(tat, pair_now, limits):
                    tat = 0.0
                tat = max(tat, pair_now)
                allowed = tat - limits.pair_tolerance
                if allowed <= pair_now:
                    self._pairs[key] = tat + weight * limits.pair_interval
                    waits.append(0.0)
                else:
                    waits.append(allowed - pair_now)
            if len(self._pairs) > 200_000:  # drop buckets that are full again
                self._pairs = {k: v for k, v in self._pairs.items() if v > pair_now}
        return Admission(waits)

    def admit_many(
        self, batches: Sequence[tuple[str, Sequence[tuple[str, int]], Limits]]
    ) -> list[Admission]:
        return [self.admit(number, recipients, limits) for number, recipients, limits in batches]

    def reserve(self, number: str, count: int, limits: Limits) -> list[float]:
        with self._lock:
            now = time.monotonic()
            tat0 = max(self._numbers.get(number, 0.0), now)
            self._numbers[number] = tat0 + count * limits.interval
        return _schedule(now, tat0 - now, count, limits)

    def consume(self, number: str, count: int, limits: Limits) -> None:
        if count <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._numbers[number] = max(self._numbers.get(number, 0.0), now) + (
                count * limits.interval
            )

    def hold(self, number: str, seconds: float, recipients: Sequence[str], limits: Limits) -> None:
        with self._lock:
            if seconds > 0:
                until = time.monotonic() + seconds
                self._numbers[number] = max(self._numbers.get(number, 0.0), until)
            pair_now = clock.now().timestamp()
            for recipient in recipients:
                key = (number, recipient_key(recipient))
                tat = self._pairs.get(key, 0.0)
                if _pair_stale(tat, pair_now, limits):
                    tat = 0.0
                self._pairs[key] = max(tat, pair_now + limits.pair_tolerance + limits.pair_interval)

    def reset(self) -> None:
        with self._lock:
            self._numbers.clear()
            self._pairs.clear()


# KEYS[1]: the number's bucket; KEYS[2..]: the distinct recipients' buckets.
# ARGV: interval, tolerance, pair interval, pair tolerance, pair clock now, requests to admit
# without a recipient (a batch that fell behind), then per message its recipient's KEYS index
# and its weight. Returns the number's theoretical arrival time
# minus now (seconds), then each message's pair wait, all as strings (Lua numbers lose
# precision as Redis integers).
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local pinterval, ptolerance = tonumber(ARGV[3]), tonumber(ARGV[4])
local pnow = tonumber(ARGV[5])
local admitted = tonumber(ARGV[6])
local stale = pnow + ptolerance + 100 * pinterval
local tats = {}
for i = 2, #KEYS do
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  if v > stale then v = 0 end
  tats[i] = v
end
local out = {}
local j = 7
while j < #ARGV do
  local i, weight = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
  local tat = math.max(tats[i], pnow)
  local allowed = tat - ptolerance
  if allowed <= pnow then
    tats[i] = tat + weight * pinterval
    out[#out + 1] = '0'
  else
    out[#out + 1] = string.format('%.6f', allowed - pnow)
  end
  j = j + 2
end
for i = 2, #KEYS do
  if tats[i] > pnow then
    redis.call('SET', KEYS[i], string.format('%.6f', tats[i]), 'EX',
      math.ceil(tats[i] - pnow) + 1)
  end
end
local tat0 = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if admitted > 0 then
  local tat = tat0 + admitted * interval
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX',
    math.ceil((tat - now + tolerance) * 1000) + 1000)
end
table.insert(out, 1, string.format('%.6f', tat0 - now))
return out
"""

_CONSUME = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
tat = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return 1
"""


# KEYS[1]: the number's bucket; KEYS[2..]: recipients' buckets. ARGV: seconds to hold the
# number, the pair clock now, the hold for a recipient (pair tolerance + one interval).
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local seconds, pnow, phold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if seconds > 0 then
  local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + seconds)
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
for i = 2, #KEYS do
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), pnow + phold)
  redis.call('SET', KEYS[i], string.format('%.6f', tat), 'EX', math.ceil(tat - pnow) + 1)
end
return 1
"""


class RedisLimiter:
    """The buckets in Redis, shared by every worker process and machine."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._admit = self._redis.register_script(_ADMIT)
        self._consume = self._redis.register_script(_CONSUME)
        self._hold = self._redis.register_script(_HOLD)

    @staticmethod
    def _number_key(number: str) -> str:
        # The hash tag keeps a number's keys in one Redis Cluster slot, as one script needs.
        return f"{KEY_PREFIX}:{{{number}}}"

    def admit(
        self, number: str, recipients: Sequence[tuple[str, int]], limits: Limits
    ) -> Admission:
        return self.admit_many([(number, recipients, limits)])[0]

    def _admit_call(
        self, number: str, recipients: Sequence[tuple[str, int]], limits: Limits
    ) -> tuple[list[str], list[Any]]:
        base = self._number_key(number)
        keys = [base]
        index: dict[str, int] = {}
        args: list[Any] = [
            repr(limits.interval),
            repr(limits.tolerance),
            repr(limits.pair_interval),
            repr(limits.pair_tolerance),
            repr(clock.now().timestamp()),
            0,
        ]
        for recipient, weight in recipients:
            hashed = recipient_key(recipient)
            if hashed not in index:
                keys.append(f"{base}:to:{hashed}")
                index[hashed] = len(keys)  # Lua's KEYS are 1-based
            args += [index[hashed], weight]
        return keys, args

    def admit_many(
        self, batches: Sequence[tuple[str, Sequence[tuple[str, int]], Limits]]
    ) -> list[Admission]:
        import redis

        calls = [self._admit_call(*batch) for batch in batches]
        try:
            if len(calls) == 1:
                replies = [self._admit(keys=calls[0][0], args=calls[0][1])]
            else:
                # One round trip for the whole batch's numbers; each script stays atomic.
                pipe = self._redis.pipeline(transaction=False)
                for keys, args in calls:
                    self._admit(keys=keys, args=args, client=pipe)
                replies = pipe.execute()
        except redis.RedisError as exc:
            # Nothing was sent: the sender queues the batch again.
            raise ChannelError(f"rate limiter unavailable: {type(exc).__name__}") from exc
        return [Admission([float(w) for w in list(reply)[1:]]) for reply in replies]

    def _call(self, keys: list[str], args: list[Any]) -> list[bytes]:
        import redis

        try:
            return list(self._admit(keys=keys, args=args))
        except redis.RedisError as exc:
            # Nothing was sent: the sender queues the batch again.
            raise ChannelError(f"rate limiter unavailable: {type(exc).__name__}") from exc

    def reserve(self, number: str, count: int, limits: Limits) -> list[float]:
        args: list[Any] = [repr(limits.interval), repr(limits.tolerance), 1, 0, 0, count]
        before = time.monotonic()
        reply = self._call([self._number_key(number)], args)
        # Redis read its clock somewhere during the call: the midpoint is the best guess.
        start = (before + time.monotonic()) / 2
        return _schedule(start, float(reply[0]), count, limits)

    def consume(self, number: str, count: int, limits: Limits) -> None:
        if count > 0:
            self._consume(keys=[self._number_key(number)], args=[count, repr(limits.interval)])

    def hold(self, number: str, seconds: float, recipients: Sequence[str], limits: Limits) -> None:
        base = self._number_key(number)
        keys = [base] + sorted({f"{base}:to:{recipient_key(r)}" for r in recipients})
        args = [
            repr(float(seconds)),
            repr(clock.now().timestamp()),
            repr(limits.pair_tolerance + limits.pair_interval),
        ]
        self._hold(keys=keys, args=args)

    def reset(self) -> None:
        for key in self._redis.scan_iter(f"{KEY_PREFIX}:*", count=1000):
            self._redis.delete(key)


_limiter: Limiter | None = None
_limiter_lock = threading.Lock()


def limiter() -> Limiter:
    """The process's limiter: on Redis when REDIS_URL is set, else in this process."""
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            from django.conf import settings

            url = getattr(settings, "REDIS_URL", None)
            _limiter = RedisLimiter(url) if url else LocalLimiter()
        return _limiter


class PacedError(ChannelError):
    """Not sent: the recipient's pair limit allows it only in `retry_after` seconds. The sender
    queues it again for then; this is pacing, not a failed attempt."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"paced: pair limit, retry in {retry_after:.1f} s", code="paced")
        self.retry_after = retry_after


def limits_for(config: ChannelConfig) -> Limits:
    return Limits.for_rate(config.messages_per_second)


def pace(
    config: ChannelConfig, recipients: Sequence[str], owners: Sequence[int]
) -> tuple[list[int], dict[int, PacedError]]:
    """Admit a WhatsApp batch by each man's pair limit. `recipients[i]` is message i's
    recipient, `owners[j]` the message request j belongs to (a message may take several
    requests). Returns the requests to send now (their indexes) and the messages paced for
    later; the requests' moments come from `reserve_for` as they go."""
    return pace_many([(config, recipients, owners)])[0]


def pace_many(
    batches: Sequence[tuple[ChannelConfig, Sequence[str], Sequence[int]]],
) -> list[tuple[list[int], dict[int, PacedError]]]:
    """`pace` for several numbers' batches, admitted together."""
    asked_per_batch, requests = [], []
    for config, recipients, owners in batches:
        weights = [0] * len(recipients)
        for owner in owners:
            weights[owner] += 1
        asked = [i for i, weight in enumerate(weights) if weight]
        asked_per_batch.append(asked)
        requests.append(
            (
                config.phone_number_id,
                [(recipients[i], weights[i]) for i in asked],
                limits_for(config),
            )
        )
    admissions = limiter().admit_many(requests) if requests else []
    out = []
    for (_config, _recipients, owners), asked, admission in zip(
        batches, asked_per_batch, admissions, strict=True
    ):
        waits = zip(asked, admission.pair_waits, strict=True)
        paced = {i: PacedError(wait) for i, wait in waits if wait > 0}
        chosen = [j for j, owner in enumerate(owners) if owner not in paced]
        out.append((chosen, paced))
    return out


def reserve_for(config: ChannelConfig) -> Callable[[int], list[float]]:
    """Moments to send the next `count` requests at, from the number's bucket."""
    number, limits = config.phone_number_id, limits_for(config)
    return lambda count: limiter().reserve(number, count, limits)


class Pacer:
    """Paces a synchronous sender (Twilio's client sends one request at a time) through a
    shared bucket: `wait()` returns when the next request may leave. Moments are reserved a
    few at a time, just in time; one found more than LATE_AFTER in the past (a slow request
    before it) is given up for a new one, so a late sender never catches up in a burst."""

    def __init__(
        self,
        bucket: str,
        messages_per_second: float,
        total: int,
        *,
        chunk: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._bucket = bucket
        self._limits = Limits.for_rate(messages_per_second)
        self._left = total
        self._chunk = chunk
        self._sleep = sleep
        self._moments: list[float] = []

    def wait(self) -> None:
        if self._left <= 0:
            raise RuntimeError("more requests than the pacer was made for")
        while True:
            if not self._moments:
                count = min(self._chunk, self._left)
                self._moments = limiter().reserve(self._bucket, count, self._limits)
            delay = self._moments[0] - time.monotonic()
            if delay > 0:
                self._sleep(delay)
                continue
            if -delay > LATE_AFTER:
                self._moments = []
                continue
            self._moments.pop(0)
            self._left -= 1
            return


def slow_down(config: ChannelConfig, *, number: bool, recipients: Sequence[str] = ()) -> None:
    """Meta's own signal that we went too fast (130429 for the number, 131056 for a man):
    hold the number's bucket for THROUGHPUT_HOLD, and each man's for a pair interval, in
    every process sharing the buckets. Our pacing should make these rare; when they come,
    Meta counts differently from us, and backing off is what it asks."""
    seconds = THROUGHPUT_HOLD if number else 0.0
    if seconds <= 0 and not recipients:
        return
    limiter().hold(config.phone_number_id, seconds, list(recipients), limits_for(config))


def inbound_count(channel: str, count: int) -> None:
    """Meta counts the messages a number receives against its throughput too."""
    from tertulia.messaging.models import ChannelConfig

    if count <= 0:
        return
    config = ChannelConfig.objects.filter(name=channel.partition(":")[2]).first()
    if config is None:
        return
    try:
        limiter().consume(config.phone_number_id, count, limits_for(config))
    except Exception:  # noqa: BLE001 - counting must never lose the messages themselves
        logger.warning("could not count %d inbound message(s) on %s", count, channel)
