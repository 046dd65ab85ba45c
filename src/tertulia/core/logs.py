"""Logging filters for the project's LOGGING setting."""

from __future__ import annotations

import logging


class RefusalsWithoutTraceback(logging.Filter):
    """A 403 or a 404 is an answer, not a fault: Django logs it with the exception that made
    it, and its traceback buried the lines an operator looks for. It stays, on one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
