"""Messages in and out: the Outbox the scheduler fills, the sender that drains it through a
Channel, the inbound store and the router that decides what an inbound message means."""
