"""Safety triage: which community posts and private messages need a human first.

This package owns the classifier that scores every inbound message for risk (threats to a
partner, disclosures of violence, self-harm, children at risk, harassment of other members) and
the `tertulia safety` commands. It deliberately imports no Django, so it can be used from a
worker, a script or the command line alike.

It is also the Django app (label `safety`) that owns Alert, Referral, Notification and the
append-only AuditLog (`models.py`); raising an Alert, holding the message, replying to him with a
referral and notifying the facilitator are built on top of `classify()`, not in it
(`services.py`, connected to the router's `inbound_routed` signal in `receivers.py`). Those
modules import Django; this package's top level and the classifier still do not.

Holding: messaging has no "held" route, so a flagged message is routed to the facilitator and
the Alert rows pointing at it are what hold it. The community relay must check
`services.message_is_held()` and never relay a held message.
"""

from __future__ import annotations

from tertulia.safety.classifier import (
    CATEGORIES,
    Classifier,
    Evidence,
    Triage,
    get_classifier,
    register_classifier,
)

__all__ = [
    "CATEGORIES",
    "Classifier",
    "Evidence",
    "Triage",
    "get_classifier",
    "register_classifier",
]
