"""Safety triage: which community posts and private messages need a human first.

This package owns the classifier that scores every inbound message for risk (threats to a
partner, disclosures of violence, self-harm, children at risk, harassment of other members) and
the `tertulia safety` commands. It deliberately imports no Django, so it can be used from a
worker, a script or the command line alike.

Later it becomes the Django app that also owns the Alert and Referral models; raising an Alert,
holding the message and notifying the facilitator are built on top of `classify()`, not in it.
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
