"""Signals other apps listen to, so that messaging does not need to know about them."""

from django.dispatch import Signal

# Sent inside the routing transaction, after an inbound message is routed and before it is
# marked routed. Arguments: message (Message), now (datetime). A receiver may change
# message.route (e.g. safety triage holds it); it must never delete the message.
inbound_routed = Signal()
