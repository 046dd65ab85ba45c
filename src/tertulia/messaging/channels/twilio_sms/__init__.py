"""Twilio Programmable Messaging (SMS): segment counting, request signatures, a client built on
the official `twilio` library and a local fake of the Messages endpoint. Free of Django."""
