"""The one table that maps Cloud API errors to what the sender does about them.

Errors reach us three ways: synchronously in the Graph error envelope of a failed POST, as a
transport failure (timeout, dropped connection, HTTP 429/5xx without a usable body), and
asynchronously in a `failed` status webhook. All three go through `action_for`, so a code
means the same thing whichever way it arrived.

`docs/whatsapp-errors.md` is generated from `ERROR_TABLE` by `render_markdown()`; a test fails
when the two disagree. Regenerate with::

    python -m tertulia.messaging.channels.whatsapp.errors > docs/whatsapp-errors.md
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.StrEnum):
    """What the sender does with a message whose send failed."""

    # Try the same request again later, with exponential backoff and jitter
    # (sender.retry_delay), within the rate limit. If the failure left the request possibly
    # accepted (see CloudAPIError.maybe_accepted) the sender must reconcile first instead of
    # sending a second copy.
    RETRY = "retry"
    # The 24-hour customer-service window is closed: send the day's template instead, once.
    RESEND_AS_TEMPLATE = "resend_as_template"
    # This recipient cannot get this message; retrying will not help. Mark it and move on.
    UNDELIVERABLE = "undeliverable"
    # The channel itself is broken (token, account, templates, spam limits): stop sending on it
    # and alert staff, so that we do not burn through the outbox or the number's quality.
    PAUSE_CHANNEL = "pause_channel"
    # We do not know this error: fail the message where staff will see it; never guess.
    FAIL_VISIBLY = "fail_visibly"


@dataclass(frozen=True)
class ErrorRule:
    """One row of the table: an inclusive range of codes (a single code has low == high)."""

    low: int
    high: int
    action: Action
    title: str
    why: str

    def matches(self, code: int) -> bool:
        return self.low <= code <= self.high

    @property
    def label(self) -> str:
        if self.low == self.high:
            return str(self.low)
        if self.low == 132000 and self.high == 132999:
            return "132xxx"
        return f"{self.low}–{self.high}"


def _rule(code: int | tuple[int, int], action: Action, title: str, why: str) -> ErrorRule:
    low, high = (code, code) if isinstance(code, int) else code
    return ErrorRule(low, high, action, title, why)


# Specific codes come before ranges: the first matching rule wins.
ERROR_TABLE: tuple[ErrorRule, ...] = (
    _rule(130429, Action.RETRY, "Rate limit hit",
          "The phone number's throughput (80 msg/s by default) was exceeded."),
    _rule(131056, Action.RETRY, "(Business Account, Consumer Account) pair rate limit hit",
          "Too many messages to the same person in a short time (about one per 6 s)."),
    _rule(131000, Action.RETRY, "Something went wrong",
          "Transient failure inside Meta."),
    _rule(131016, Action.RETRY, "Service unavailable",
          "Meta is temporarily overloaded or down."),
    _rule(4, Action.RETRY, "Too many calls (application rate limit)",
          "Graph API call-count throttling of the app; it clears by itself."),
    _rule(80007, Action.RETRY, "Rate limit issues (WhatsApp Business Account)",
          "The business account's call rate was exceeded; it clears by itself."),
    _rule(131047, Action.RESEND_AS_TEMPLATE, "Re-engagement message",
          "More than 24 hours since the participant's last message: only a template may be sent."),
    _rule(131026, Action.UNDELIVERABLE, "Message undeliverable",
          "Not a WhatsApp user, old app version, or has not accepted the terms."),
    _rule(131049, Action.UNDELIVERABLE, "Meta chose not to deliver",
          "Per-user marketing limit for healthy ecosystem engagement."),
    _rule(131050, Action.UNDELIVERABLE, "User has stopped marketing messages",
          "The recipient opted out of marketing messages from this business."),
    _rule(131051, Action.UNDELIVERABLE, "Unsupported message type",
          "The recipient's app cannot show this message type."),
    _rule(131030, Action.UNDELIVERABLE, "Recipient phone number not in allowed list",
          "Test numbers may only message the recipients added in the app dashboard."),
    _rule(368, Action.PAUSE_CHANNEL, "Temporarily blocked for policies violations",
          "The account is restricted; sending more makes it worse."),
    _rule(131048, Action.PAUSE_CHANNEL, "Spam rate limit hit",
          "Too many recipients blocked or reported the number; stop and review content."),
    _rule(131031, Action.PAUSE_CHANNEL, "Account has been locked",
          "The business account is locked (policy or registration problem)."),
    _rule(190, Action.PAUSE_CHANNEL, "Access token has expired",
          "Every request will fail until staff set a new token."),
    _rule((132000, 132999), Action.PAUSE_CHANNEL, "Template error",
          "A template is missing, paused, rejected or its parameters do not match."),
)  # fmt: skip

# How transport-level failures (no Graph error code) are handled; part of the same table.
TRANSPORT_RULES: tuple[tuple[str, Action, str], ...] = (
    ("HTTP 429", Action.RETRY, "Throttled before Meta produced an error code."),
    ("HTTP 5xx", Action.RETRY, "Server or gateway failure."),
    ("timeout / connection dropped", Action.RETRY,
     "Retried only after reconciliation: the request may have been accepted."),
    ("any other code", Action.FAIL_VISIBLY, "Unknown to this table; a person must look at it."),
)  # fmt: skip


def rule_for(code: int | None) -> ErrorRule | None:
    """The table row for a Cloud API error code, or None when the code is not in the table."""
    if code is None:
        return None
    for rule in ERROR_TABLE:
        if rule.matches(code):
            return rule
    return None


def action_for(
    code: int | None, *, http_status: int | None = None, transport_error: bool = False
) -> Action:
    """The action for an error, from its Cloud API code first, then from the transport.

    `transport_error` is True for timeouts and dropped connections, which carry no code.
    """
    rule = rule_for(code)
    if rule is not None:
        return rule.action
    if transport_error:
        return Action.RETRY
    if http_status is not None and (http_status == 429 or 500 <= http_status <= 599):
        return Action.RETRY
    return Action.FAIL_VISIBLY


def render_markdown() -> str:
    """The table as Markdown, exactly as `docs/whatsapp-errors.md` holds it."""
    lines = [
        "# WhatsApp Cloud API errors and what tertulia does about them",
        "",
        "Generated from `src/tertulia/messaging/channels/whatsapp/errors.py` (`ERROR_TABLE`);",
        "do not edit by hand. Regenerate with",
        "`python -m tertulia.messaging.channels.whatsapp.errors > docs/whatsapp-errors.md`.",
        "",
        "The same table applies whether the error came back synchronously (the Graph error",
        "envelope of the send request) or later in a `failed` status webhook.",
        "",
        "| Action | Meaning |",
        "|---|---|",
        "| `retry` | Send the same request again after an exponential backoff with jitter "
        "(the sender's `retry_delay`: 15–30 s, then 30–60 s, ...), within the rate limit; "
        "130429 also holds the number's bucket for a second and 131056 the man's for a pair "
        "interval (`ratelimit.slow_down`). In a `failed` status after Meta accepted the "
        "message, Meta did not deliver that send: it goes again as a new request, on the same "
        "backoff and within the same attempts, once per failed status (decision 0097). |",
        "| `resend_as_template` | The 24-hour window is closed: send the message's template "
        "instead, once (see below). |",
        "| `undeliverable` | Mark the message undeliverable to this person; no retry. |",
        "| `pause_channel` | Pause the whole channel and alert staff. |",
        "| `fail_visibly` | Unknown error: fail the message where staff will see it. |",
        "",
        "## By Cloud API error code",
        "",
        "| Code | Title | Action | Why |",
        "|---|---|---|---|",
    ]
    for rule in ERROR_TABLE:
        lines.append(f"| {rule.label} | {rule.title} | `{rule.action.value}` | {rule.why} |")
    lines += [
        "",
        "## Without an error code",
        "",
        "| Failure | Action | Why |",
        "|---|---|---|",
    ]
    for failure, action, why in TRANSPORT_RULES:
        lines.append(f"| {failure} | `{action.value}` | {why} |")
    lines += [
        "",
        "## A request that may have been accepted",
        "",
        "A timeout or a dropped connection after the request was written leaves us not knowing",
        "whether Meta accepted the message. The client marks such failures with",
        "`maybe_accepted=True`; the sender must never re-send them blindly as a new message. It",
        "first waits for a status webhook carrying the message's `biz_opaque_callback_data`",
        "(our outbox reference, echoed by Meta), and only re-sends when none arrives in time.",
        "",
        "## The 24-hour window and templates",
        "",
        "Free-form messages may only be sent within 24 hours of the participant's last message",
        "(`tertulia.messaging.window`); outside it only an approved template may be sent. Each",
        "channel has a registry of templates (admin, or `tertulia channel templates load NAME",
        "FILE`; example: `content/guy-talk/whatsapp-templates.yaml`). Placeholders are filled",
        "only with program values (day, topic, day_title, program, days_left), never with the",
        "man's name, pseudonym or number. Before each send (decision 0035):",
        "",
        "| Situation | What is sent |",
        "|---|---|",
        "| Window open | The message, free-form. |",
        "| Window closed, first step of a program day | The day's opening template (the day's "
        "own, else the generic one) instead. |",
        "| Window closed, service message naming a template (`Outbox.template`) | That "
        "template instead; a name missing from the registry fails the message visibly. |",
        "| Window closed, any other message | Nothing yet: it waits, queued (not counted as "
        "an attempt), and goes the moment he writes; after 23 hours it fails visibly "
        "(`window_closed`). |",
        "| `131047` at once (HTTP 400) | The same batch sends its template instead, once; "
        "without a template it waits as above. |",
        "| `131047` in a `failed` status after Meta accepted it | The Outbox row is queued "
        "again and goes as its template, once; without a template it waits as above. |",
        "| The template is refused too (at once or by status) | Never sent again: the message "
        "fails with `131047`. |",
        "",
        "Each step is recorded on the Message row's payload: `template` (the template it went",
        "as), `window_closed_at` (when Meta closed the window on it: free-form waits until he",
        "writes again, even if our own window says open) and `reengaged_after` (`code` 131047,",
        "`via` `answer` or `status`). A message is re-engaged at most once. A channel's",
        "`service_window` switch turns all this off, for load tests against a fake that does",
        "not enforce the window.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
