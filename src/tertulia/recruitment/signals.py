"""Signals other apps listen to, so that recruitment does not need to know about them."""

from django.dispatch import Signal

# Sent when a man has consented and finished the baseline: he is ready for randomization.
# Sent inside the routing transaction (so a receiver's writes commit or roll back with his
# answer). Arguments: participant (Participant), screening (Screening), now (datetime).
baseline_completed = Signal()
