"""tertulia: runs a chat-delivered program for men that prevents intimate-partner violence,
and measures whether it works."""

__version__ = "0.1.0"
