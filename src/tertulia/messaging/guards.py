"""Numbers the platform must never message, whoever asks.

Other apps register a guard that names, among some participants' phone hashes, those that are
blocked (recruitment blocks the numbers of partner contacts: a partner is never contacted through
the man's channel). `service_message_queue` refuses to queue to a blocked number, and the sender
cancels any row addressed to one, so neither a keyword's answer nor a set-based insert can reach
it."""

from __future__ import annotations

from collections.abc import Callable, Collection

Guard = Callable[[Collection[str]], set[str]]

_guards: dict[str, Guard] = {}


class RecipientBlocked(Exception):
    """This number must not be messaged through a participant's channel."""


def recipient_guard_register(name: str, guard: Guard) -> None:
    """Register (or replace) the guard `name`: it gets phone hashes and returns the blocked."""
    _guards[name] = guard


def blocked_hashes(phone_hashes: Collection[str]) -> set[str]:
    hashes = {h for h in phone_hashes if h}
    if not hashes:
        return set()
    blocked: set[str] = set()
    for guard in _guards.values():
        blocked |= guard(hashes)
    return blocked
