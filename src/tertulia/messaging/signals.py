"""Signals other apps listen to, so that messaging does not need to know about them."""

from django.dispatch import Signal

# Sent inside the routing transaction, after an inbound message is routed and before it is
# marked routed. Arguments: message (Message), now (datetime). A receiver may change
# message.route (e.g. safety triage holds it); it must never delete the message.
inbound_routed = Signal()

# Sent by message_record_inbound when a message comes from a number that is no participant.
# Arguments: address (E.164), inbound (messaging.services.Inbound). A receiver may return a
# Participant to attach the message to (recruitment does, for a man answering an ad); the
# first Participant returned wins. Returning None leaves the message without a participant.
inbound_from_unknown = Signal()

# Sent by a long-lived worker (`tertulia worker`, `tertulia serve`'s worker thread) before it
# takes its first task or webhook event. No arguments. A receiver builds what the first message
# would otherwise wait for (safety triage compiles its lexicon: half a second of CPU).
worker_starting = Signal()
