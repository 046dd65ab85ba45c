"""Shared foundations: encryption of personal data at rest, keyed hashes for look-ups, and the
clock every other app asks for the time."""
