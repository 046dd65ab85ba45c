"""The WhatsApp Cloud API as a tertulia Channel (kind "whatsapp").

A cohort names its channel `whatsapp:<name>`; `<name>` is a ChannelConfig row. The Channel
interface's factory gets no name, so the adapter finds the configuration from the Message rows
it is asked to send (the sender groups a batch by channel, so one batch is one config).

Errors come back through the error table (errors.py): retryable ones as ordinary ChannelErrors,
undeliverable and unknown ones as permanent ChannelErrors, pause-the-channel ones pause the
ChannelConfig, and a request Meta may have accepted as `MaybeAcceptedError`, which the sender
leaves 'sending' for `outbox_recover_stale` to reconcile instead of re-sending it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils import timezone

from tertulia.core import clock
from tertulia.messaging.channel import (
    ChannelError,
    Finish,
    NotYetKnown,
    Outbound,
    SendResult,
    batch_channel,
    provider_confirmed,
)
from tertulia.messaging.models import ChannelConfig, MediaUpload, Message, WebhookEvent
from tertulia.messaging.ratelimit import (
    LATE_AFTER,
    PacedError,
    pace_many,
    reserve_for,
    slow_down,
)

from . import reengagement
from .client import (
    CAPTIONED_KINDS,
    CloudAPIClient,
    CloudAPIError,
    MissedSlot,
    PayloadError,
    buttons_payload,
    close_sessions,
    media_payload,
    text_payload,
)
from .client import SendResult as CloudSendResult
from .errors import Action

logger = logging.getLogger(__name__)

KIND = "whatsapp"
# Meta keeps an uploaded media id for 30 days; re-upload a day before.
MEDIA_TTL = dt.timedelta(days=29)
# Seconds to wait for Meta's answer; a send that times out after leaving is "maybe accepted".
SEND_TIMEOUT = 10.0


class MaybeAcceptedError(ChannelError):
    """Meta may have accepted the message although we got no answer: never re-send it blindly.
    The sender leaves its row 'sending'; reconciliation settles it from the status webhooks."""

    maybe_accepted = True


def channel_name(channel: str) -> str:
    """'whatsapp:peru' -> 'peru'."""
    prefix, _, name = channel.partition(":")
    if prefix != KIND or not name:
        raise ChannelError(f"not a WhatsApp channel: '{channel}'", permanent=True)
    return name


def config_for(channel: str) -> ChannelConfig:
    # The secrets are decrypted only when read (a new client needs the token).
    config = (
        ChannelConfig.objects.filter(name=channel_name(channel))
        .defer("access_token", "app_secret", "verify_token")
        .first()
    )
    if config is None:
        raise ChannelError(f"no WhatsApp channel is configured for '{channel}'", permanent=True)
    return config


def configs_for(channels: set[str]) -> dict[str, ChannelConfig]:
    """The configurations of several WhatsApp channels in one query, by channel."""
    names = {channel_name(c): c for c in channels}
    found = ChannelConfig.objects.filter(name__in=names).defer(
        "access_token", "app_secret", "verify_token"
    )
    return {names[config.name]: config for config in found}


def _failing(results: list[SendResult | ChannelError]) -> Finish:
    return lambda: list(results)


def channel_pause(config: ChannelConfig, reason: str) -> None:
    """Stop sending on a channel until staff resume it (a token expired, the number is
    restricted, a template broke). Logged without secrets."""
    updated = ChannelConfig.objects.filter(pk=config.pk, paused=False).update(
        paused=True, paused_reason=reason[:300], paused_at=timezone.now()
    )
    if updated:
        logger.error("WhatsApp channel %s paused: %s", config.channel, reason[:300])


# -- clients: one per configuration and process, reused across batches ---------------------------

_clients: dict[tuple[str, ...], CloudAPIClient] = {}
_clients_lock = threading.Lock()


def client_for(config: ChannelConfig) -> CloudAPIClient:
    """The process's client for a channel, reused across batches; a new one when the channel's
    settings changed (a new token is saved, so `updated_at` moves). The token is read only
    when a client is built."""
    key = (
        config.name,
        config.phone_number_id,
        config.base_url,
        config.api_version,
        config.updated_at.isoformat() if config.updated_at else "",
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            for old_key in [k for k in _clients if k[0] == config.name]:
                _clients.pop(old_key).close()
            client = CloudAPIClient(
                phone_number_id=config.phone_number_id,
                access_token=config.access_token,
                base_url=config.base_url,
                api_version=config.api_version,
                timeout=SEND_TIMEOUT,
            )
            _clients[key] = client
        return client


def clients_close() -> None:
    with _clients_lock:
        while _clients:
            _clients.popitem()[1].close()
    with _reuploaded_lock:
        _reuploaded.clear()
    close_sessions()


# -- media ---------------------------------------------------------------------------------------

_file_hashes: dict[tuple[str, float, int], str] = {}


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    found = _file_hashes.get(key)
    if found is None:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        found = _file_hashes[key] = digest.hexdigest()
    return found


def media_id_for(config: ChannelConfig, client: CloudAPIClient, path: Path, mime: str) -> str:
    """The channel's media id for a file: uploaded once, reused, re-uploaded after expiry."""
    sha = _file_sha256(path)
    now = timezone.now()
    found = MediaUpload.objects.filter(
        channel=config.channel, sha256=sha, expires_at__gt=now
    ).first()
    if found is not None:
        return found.media_id
    media_id = client.upload_media(path, mime or None)
    _upload_record(config, sha, media_id, mime, now)
    return media_id


# Meta's answers when a media id it gave us cannot be sent on (expired, or not one this number
# may send): the relay then downloads the file once and uploads it again (media_reupload).
MEDIA_REFUSED = frozenset({"131052", "131053"})
_reuploaded: dict[tuple[str, str, str], tuple[str, dt.datetime]] = {}
_reuploaded_lock = threading.Lock()


def _upload_record(
    config: ChannelConfig, sha: str, media_id: str, mime: str, now: dt.datetime
) -> None:
    """Remember the id Meta gave this file on this number, until it expires there."""
    MediaUpload.objects.update_or_create(
        channel=config.channel,
        sha256=sha,
        defaults={
            "media_id": media_id,
            "mime": mime,
            "uploaded_at": now,
            "expires_at": now + MEDIA_TTL,
        },
    )


def media_reupload(config: ChannelConfig, client: CloudAPIClient, media_id: str) -> str | None:
    """A media id this channel can send for a provider's media id it could not send (a
    member's voice note or image relayed by reference): the file is downloaded and uploaded
    again, once per channel (MediaUpload, by content), and remembered in this process. None
    when Meta no longer has the file: nothing is left to relay."""
    key = (config.channel, config.base_url, media_id)
    now = timezone.now()
    with _reuploaded_lock:
        known = _reuploaded.get(key)
    if known is not None and known[1] > now:
        return known[0]
    try:
        info = client.get_media(media_id)
        if not info.url:
            return None
        data = client.download_media(info.url)
    except CloudAPIError as exc:
        logger.warning("WhatsApp %s: media could not be fetched again (%s)", config.channel, exc)
        return None
    sha = hashlib.sha256(data).hexdigest()
    found = MediaUpload.objects.filter(
        channel=config.channel, sha256=sha, expires_at__gt=now
    ).first()
    if found is not None:
        fresh = found.media_id
    else:
        mime = info.mime_type or "application/octet-stream"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "media"
            path.write_bytes(data)
            try:
                fresh = client.upload_media(path, mime)
            except CloudAPIError as exc:
                logger.warning("WhatsApp %s: media upload failed (%s)", config.channel, exc)
                return None
        _upload_record(config, sha, fresh, mime, now)
    with _reuploaded_lock:
        _reuploaded[key] = (fresh, now + MEDIA_TTL)
    return fresh


def media_forget(channel: str, media_id: str) -> None:
    """Drop a media id Meta no longer knows, so that the next send uploads the file again."""
    MediaUpload.objects.filter(channel=channel, media_id=media_id).delete()


# -- mapping -------------------------------------------------------------------------------------


def recipient(address: str) -> str:
    """The Cloud API's `to`: an E.164 number without its '+' (or a business-scoped user id)."""
    return address[1:] if address.startswith("+") else address


def payloads_for(
    outbound: Outbound, config: ChannelConfig, client: CloudAPIClient
) -> list[dict[str, Any]]:
    """The Cloud API payload(s) for one Outbound; every one carries our Message id, which Meta
    echoes in each status webhook (biz_opaque_callback_data)."""
    to = recipient(outbound.to)
    reference = str(outbound.message_id)
    reply_to = outbound.reply_to or None
    if outbound.kind == "buttons":
        buttons = [(b["id"], b["title"]) for b in outbound.buttons]
        return [buttons_payload(to, outbound.text, buttons, reference=reference)]
    if outbound.kind in ("audio", "video", "image", "document"):
        if outbound.media_id:
            media_id = outbound.media_id  # already on Meta's side: relayed by reference
        elif outbound.media_file is None:
            raise PayloadError(f"{outbound.kind} message without a media file")
        else:
            media_id = media_id_for(config, client, outbound.media_file, outbound.media_mime)
        caption = outbound.caption if outbound.kind in CAPTIONED_KINDS else None
        payloads = [
            media_payload(
                to,
                outbound.kind,
                media_id=media_id,
                caption=caption or None,
                reference=reference,
                reply_to=reply_to,
            )
        ]
        if outbound.caption and outbound.kind not in CAPTIONED_KINDS:
            # Audio cannot carry a caption: its words follow as a text.
            payloads += text_payload(to, outbound.caption, reference=f"{reference}.c")
        return payloads
    return text_payload(to, outbound.text, reference=reference, reply_to=reply_to)


def error_for(error: CloudAPIError, config: ChannelConfig) -> ChannelError:
    """The ChannelError the sender acts on, from the error table's action."""
    code = (
        str(error.code)
        if error.code is not None
        else (f"http{error.http_status}" if error.http_status else "transport")
    )
    if error.maybe_accepted:
        return MaybeAcceptedError(str(error), code=code)
    if error.action is Action.RETRY:
        return ChannelError(str(error), code=code)
    if error.action is Action.PAUSE_CHANNEL:
        channel_pause(config, str(error))
        return ChannelError(str(error), code=code)
    if error.action is Action.RESEND_AS_TEMPLATE:
        # Not final: reengagement.resend_refused sends it again as its template, once.
        return ChannelError(str(error), code=code)
    # UNDELIVERABLE and FAIL_VISIBLY: no retry.
    return ChannelError(str(error), code=code, permanent=True)


# Meta's answers that mean "above a limit": the number's throughput, or one man's pair limit.
THROUGHPUT = "130429"
PAIR_LIMIT = "131056"


def slow_down_on_refusals(
    config: ChannelConfig,
    outbounds: Sequence[Outbound],
    results: Sequence[SendResult | ChannelError],
) -> None:
    """Feed Meta's own rate-limit answers back into the buckets (ratelimit.slow_down): a
    130429 pauses the whole number for a moment, a 131056 makes that man wait a pair interval.
    The messages themselves are retried with the sender's backoff."""
    codes = [r.code if isinstance(r, ChannelError) else "" for r in results]
    if THROUGHPUT in codes or PAIR_LIMIT in codes:
        slow_down_for(config, codes, [o.to for o in outbounds])


def slow_down_for(config: ChannelConfig, codes: Sequence[str], recipients: Sequence[str]) -> None:
    """Slow the buckets down for Meta's answers `codes`, `codes[i]` being the answer about a
    message to `recipients[i]` (his E.164 number, as the sender paces him): whether it came
    at once (slow_down_on_refusals) or later in a `failed` status webhook (processing)."""
    if THROUGHPUT not in codes and PAIR_LIMIT not in codes:
        return
    pair = [to for to, code in zip(recipients, codes, strict=True) if code == PAIR_LIMIT and to]
    try:
        slow_down(config, number=THROUGHPUT in codes, recipients=pair)
    except Exception:  # noqa: BLE001 - the results stand; the next batch paces as before
        logger.warning("could not slow %s down after Meta's rate-limit answer", config.channel)


@dataclass
class _Batch:
    """One number's share of a sender batch, between deciding and sending."""

    outbounds: Sequence[Outbound]
    config: ChannelConfig
    client: CloudAPIClient
    plans: list[reengagement.Plan]
    now: dt.datetime
    results: list[SendResult | ChannelError | None]
    flat: list[dict[str, Any]] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)


class WhatsAppChannel:
    kind = KIND

    def send_many(self, outbounds: Sequence[Outbound]) -> list[SendResult | ChannelError]:
        return self.send_start(outbounds)()

    def send_start(self, outbounds: Sequence[Outbound]) -> Finish:
        return self.send_start_all([outbounds])[0]

    def send_start_all(self, groups: Sequence[Sequence[Outbound]]) -> list[Finish]:
        """Decide and start several numbers' batches (one group per configured channel); each
        returned function waits for its group's requests and gives each message's result.
        The channels' settings come in one query and the rate limiter admits every group in
        one round trip; the requests leave in the background (the process's event loop), all
        numbers at once."""
        names = {batch_channel(group, "WhatsApp") for group in groups if group}
        configs = configs_for(names)
        finishes: list[Finish | None] = [None] * len(groups)
        batches: list[tuple[int, _Batch]] = []
        for position, group in enumerate(groups):
            if not group:
                finishes[position] = list
                continue
            name = batch_channel(group, "WhatsApp")
            config = configs.get(name)
            if config is None:
                missing = f"no WhatsApp channel is configured for '{name}'"
                finishes[position] = _failing([ChannelError(missing, permanent=True)] * len(group))
                continue
            if config.paused:
                paused = ChannelError(f"channel {config.channel} is paused")
                finishes[position] = _failing([paused] * len(group))
                continue
            batches.append((position, self._prepare(group, config)))
        # The number's throughput and each man's pair limit (ratelimit.py): some messages
        # wait for a later batch, the rest leave at their moment.
        try:
            admitted = pace_many(
                [(b.config, [o.to for o in b.outbounds], b.owners) for _, b in batches]
            )
        except ChannelError as exc:
            for position, batch in batches:
                finishes[position] = _failing([r if r is not None else exc for r in batch.results])
            return [f for f in finishes if f is not None]
        for (position, batch), (chosen, paced) in zip(batches, admitted, strict=True):
            finishes[position] = self._launch(batch, chosen, paced)
        return [f for f in finishes if f is not None]

    def _prepare(self, outbounds: Sequence[Outbound], config: ChannelConfig) -> _Batch:
        """Each message's plan (his 24-hour window) and Cloud API payloads."""
        client = client_for(config)
        now = clock.now()
        # His 24-hour window: free-form inside it, a template (or a wait) outside it.
        plans = reengagement.plans_for(outbounds, config, now)
        batch = _Batch(outbounds, config, client, plans, now, [None] * len(outbounds))
        for index, outbound in enumerate(outbounds):
            plan = plans[index]
            if not plan.free_form:
                held = reengagement.not_free_form(plan, now, config.channel)
                if held is not None:
                    batch.results[index] = held
                    continue
                batch.flat.append(plan.template_payload(outbound, recipient(outbound.to)))
                batch.owners.append(index)
                continue
            try:
                payloads = payloads_for(outbound, config, client)
            except PayloadError as exc:
                batch.results[index] = ChannelError(f"invalid message: {exc}", permanent=True)
                continue
            except CloudAPIError as exc:  # the media upload failed
                batch.results[index] = error_for(exc, config)
                continue
            except OSError as exc:
                batch.results[index] = ChannelError(
                    f"media file unreadable: {type(exc).__name__}", permanent=True
                )
                continue
            batch.flat.extend(payloads)
            batch.owners.extend([index] * len(payloads))
        return batch

    def _launch(self, batch: _Batch, chosen: list[int], paced: dict[int, PacedError]) -> Finish:
        config, client, results = batch.config, batch.client, batch.results
        for index, error in paced.items():
            results[index] = error
        flat = [batch.flat[j] for j in chosen]
        owners = [batch.owners[j] for j in chosen]
        future = client.send_many_start(flat, reserve=reserve_for(config), late_after=LATE_AFTER)

        def finish() -> list[SendResult | ChannelError]:
            sent = future.result()
            parts: dict[int, list[CloudSendResult | CloudAPIError]] = {}
            for owner, result in zip(owners, sent, strict=True):
                parts.setdefault(owner, []).append(result)
            for index, outcomes in parts.items():
                results[index] = self._outcome(outcomes, config)
            final = [r if r is not None else ChannelError("not sent") for r in results]
            self._relay_media_again(batch.outbounds, final, config, client)
            # Meta said it was above a limit: slow the number, or that man, down (ratelimit).
            slow_down_on_refusals(config, batch.outbounds, final)
            # Meta said 131047 (window closed) at once: its template goes instead, once.
            reengagement.resend_refused(
                batch.outbounds,
                batch.plans,
                final,
                to=lambda o: recipient(o.to),
                send=client.send_many,
                outcome=lambda sent: self._outcome([sent], config),
                now=batch.now,
            )
            return final

        return finish

    def _relay_media_again(
        self,
        outbounds: Sequence[Outbound],
        final: list[SendResult | ChannelError],
        config: ChannelConfig,
        client: CloudAPIClient,
    ) -> None:
        """Media relayed by the provider's id that Meta refused to send (expired, or not
        sendable from this number): upload it again and send those once more, paced like
        any send. What still fails keeps its error."""
        refused = [
            index
            for index, result in enumerate(final)
            if outbounds[index].media_id
            and isinstance(result, ChannelError)
            and result.code in MEDIA_REFUSED
        ]
        if not refused:
            return
        fresh = {
            media_id: media_reupload(config, client, media_id)
            for media_id in {outbounds[i].media_id for i in refused}
        }
        again = [i for i in refused if fresh[outbounds[i].media_id]]
        flat: list[dict[str, Any]] = []
        owners: list[int] = []
        for index in again:
            outbound = dataclasses.replace(
                outbounds[index], media_id=str(fresh[outbounds[index].media_id])
            )
            payloads = payloads_for(outbound, config, client)
            flat.extend(payloads)
            owners.extend([index] * len(payloads))
        sent = client.send_many(flat, reserve=reserve_for(config), late_after=LATE_AFTER)
        parts: dict[int, list[CloudSendResult | CloudAPIError]] = {}
        for owner, result in zip(owners, sent, strict=True):
            parts.setdefault(owner, []).append(result)
        for index, outcomes in parts.items():
            final[index] = self._outcome(outcomes, config)

    @staticmethod
    def _outcome(
        outcomes: list[CloudSendResult | CloudAPIError], config: ChannelConfig
    ) -> SendResult | ChannelError:
        first = outcomes[0]
        if isinstance(first, MissedSlot):
            return PacedError(0.0)
        if isinstance(first, CloudAPIError):
            return error_for(first, config)
        failed = [o for o in outcomes[1:] if isinstance(o, CloudAPIError)]
        if failed:
            # The first part went out, a later one did not: re-sending would repeat the first.
            logger.warning(
                "WhatsApp %s: a later part of a split message failed (%s)",
                config.channel,
                failed[0],
            )
        return SendResult(provider_id=first.provider_id)

    def reconcile(self, message_id: int) -> str | None:
        """After a crash or a maybe-accepted send: Meta echoes our reference in a status
        webhook for every message it accepts. Process what has arrived; a provider id found
        means it went out. None (it did not) only when webhooks did arrive after the send was
        claimed, so the pipeline works; otherwise we cannot tell and say so.

        A superseded id (the send Meta refused with 131047, before the template went) is not
        an answer: only the new send's own id is. Events are processed through the claim, so
        one another worker is processing is left to it: while such an event (received since
        the send) is unprocessed, the answer is NotYetKnown, never "it did not go"."""
        from .handoff import webhook_events_process_pending, webhook_events_unprocessed

        message = Message.objects.filter(pk=message_id).select_related("outbox").first()
        if message is None:
            return None
        webhook_events_process_pending(channel=message.channel)
        message.refresh_from_db(fields=["provider_id"])
        if provider_confirmed(message.provider_id):
            return message.provider_id
        since = message.created_at
        if message.outbox is not None and message.outbox.claimed_at is not None:
            since = max(since, message.outbox.claimed_at)
        if webhook_events_unprocessed(channel=message.channel, since=since):
            raise NotYetKnown("webhooks since the send are still being processed: ask again")
        if WebhookEvent.objects.filter(channel=message.channel, received_at__gt=since).exists():
            return None
        raise ChannelError("no webhook since the send: cannot tell whether Meta accepted it")
