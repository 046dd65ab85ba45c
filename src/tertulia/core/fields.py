"""Model fields that keep personal data encrypted in the database."""

from __future__ import annotations

from typing import Any

from django.db import models

from tertulia.core import crypto


class EncryptedTextField(models.TextField):
    """Text stored encrypted (core.crypto); decrypted when read. It cannot be filtered on: pair it
    with a keyed-hash field when look-ups are needed."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))
