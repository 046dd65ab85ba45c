"""Twilio Programmable Messaging (SMS). The client (on the official `twilio` library), segment
counting, request signatures and a local fake of the Messages endpoint are free of Django;
channel.py, processing.py, views.py and admin.py are the Django side (kind "twilio")."""
