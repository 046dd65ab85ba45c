"""`field__any=[...]`: membership in a list sent as one array parameter.

Django's `__in` turns a list into one placeholder per value, each prepared on its own: for the
outbound path's batches of hundreds of ids that preparation costs more than the query. On
PostgreSQL `__any` sends the list as a single array (`= ANY(%s)`); elsewhere it is `__in`."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.lookups import In, Lookup


class Any_(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> Any:
        prep = self.lhs.output_field.get_prep_value
        return "%s", [[prep(v) for v in value]]

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        if connection.vendor != "postgresql":
            return In(self.lhs, list(self.rhs)).as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        _rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, *rhs_params]


def register() -> None:
    models.Field.register_lookup(Any_)
    # Relations keep a lookup registry of their own (`outbox_id__any`).
    models.ForeignObject.register_lookup(Any_)
