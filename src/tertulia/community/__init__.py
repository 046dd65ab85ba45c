"""The facilitator's side of a cohort: the inbox (safety alerts first, then what men wrote that
waits for a person), and later the community relay and its moderation."""
