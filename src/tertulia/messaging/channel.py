"""The Channel interface every provider implements, and the registry of channel kinds.

A channel only talks to its provider. Deciding what to send, writing the rows, retrying and
recording statuses belong to the sender and the router, the same for every channel."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# A Message sent again (WhatsApp: as a template after a 131047 by status webhook) keeps the
# refused send's provider id under this prefix until the new send's id is known. Such an id
# says nothing about whether the new send went out.
SUPERSEDED = "superseded:"


def provider_confirmed(provider_id: str) -> bool:
    """Whether a Message's provider id shows that its current send reached the provider."""
    return bool(provider_id) and not provider_id.startswith(SUPERSEDED)


@dataclass(frozen=True)
class Outbound:
    """One message to hand to a channel. `message_id` is our Message row's id: a channel that
    can attach a client reference uses it, so a retry can be recognised."""

    message_id: int
    to: str
    kind: str  # text | buttons | audio | video | image
    text: str = ""
    caption: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)
    media_file: Path | None = None
    # A media id the provider already holds (a member's voice note or image, relayed to the
    # others by reference instead of being uploaded again for each of them).
    media_id: str = ""
    media_mime: str = ""
    language: str = "es-PE"
    # For a service message: the registry's template to send instead outside his 24-hour window.
    template: str = ""
    # The provider's id of a message in his chat that this one answers (WhatsApp shows it
    # quoted above it): a relayed answer quotes the copy of the post he received.
    reply_to: str = ""
    # Values for the template's parameters that only the message knows (a digest invitation's
    # number of new posts); the channel fills the rest from the program.
    template_values: dict[str, str] = field(default_factory=dict)
    # The configured channel it goes on ("whatsapp:peru"), when the sender knows it.
    channel: str = ""


@dataclass(frozen=True)
class SendResult:
    provider_id: str


class ChannelError(Exception):
    """The provider refused a message. `permanent` errors are not retried. `retry_at` holds a
    message the channel cannot send yet (WhatsApp: his 24-hour window is closed): the sender
    queues it again for then, and the wait does not count as a failed attempt."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        permanent: bool = False,
        retry_at: dt.datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent
        self.retry_at = retry_at


class NotYetKnown(ChannelError):
    """Reconciliation cannot tell yet: what would tell (a stored webhook) is still being
    processed by another worker. The row is left as it is and asked about again on the next
    recovery pass, neither sent again nor failed."""


def batch_channel(outbounds: Sequence[Outbound], provider: str) -> str:
    """The one configured channel ("whatsapp:peru") a batch is sent on, read from its Message
    rows: the sender groups each batch by channel, so a mixed batch is a bug."""
    from tertulia.messaging.models import Message

    channels = {o.channel for o in outbounds}
    if "" in channels:
        channels = set(
            Message.objects.filter(pk__in=[o.message_id for o in outbounds]).values_list(
                "channel", flat=True
            )
        )
    if len(channels) != 1:
        raise ChannelError(f"a {provider} batch must come from one channel", permanent=True)
    return channels.pop()


class Channel(Protocol):
    kind: str

    def send_many(self, outbounds: Sequence[Outbound]) -> list[SendResult | ChannelError]:
        """Send each message; return, in the same order, its result or its error."""
        ...

    def reconcile(self, message_id: int) -> str | None:
        """After a crash mid-send: the provider id if the provider accepted `message_id`, None
        if it certainly did not. Raise ChannelError when it cannot tell."""
        ...


Finish = Callable[[], list[SendResult | ChannelError]]


def send_start(channel: Channel, groups: Sequence[Sequence[Outbound]]) -> list[Finish]:
    """Start sending batches on `channel`, one group per configured channel of its kind
    ("whatsapp:peru", "whatsapp:lima"), and return, per group, what waits for its results.

    A channel that can send in the background (WhatsApp: its requests go on an event loop)
    has `send_start_all`; the sender starts every channel of a batch before waiting for any,
    so several numbers send at once. Any other channel sends when its results are asked for."""
    start_all = getattr(channel, "send_start_all", None)
    if start_all is not None:
        finishes: list[Finish] = start_all(groups)
        return finishes
    return [_later(channel, group) for group in groups]


def _later(channel: Channel, outbounds: Sequence[Outbound]) -> Finish:
    return lambda: channel.send_many(outbounds)


_registry: dict[str, Callable[[], Channel]] = {}


def register(kind: str, factory: Callable[[], Channel]) -> None:
    _registry[kind] = factory


def get_channel(kind: str) -> Channel:
    # Channel kinds may be configured per program ("whatsapp:peru"); the prefix is the kind.
    base = kind.split(":", 1)[0]
    try:
        return _registry[base]()
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise ChannelError(f"unknown channel kind '{kind}' (known: {known})") from None
