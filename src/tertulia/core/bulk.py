"""`bulk_insert(objs)`: Django's `bulk_create` for the hot paths, as one JSON parameter.

On PostgreSQL, `bulk_create` of a few dozen rows (a community post's 49 copies) sends a
statement with one placeholder per value, and psycopg converts such a statement on the client
each time, without caching it: that conversion costs more than the insert. Here the rows go as
one JSON array read by `json_to_recordset`, so the statement has a single placeholder and is
the same text every time. Elsewhere, and for rows this cannot express (a preset primary key, a
database-computed value, binary data), it is `bulk_create`."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.models.expressions import DatabaseDefault

M = TypeVar("M", bound=models.Model)


class _NotJSON(Exception):
    """A prepared value JSON cannot carry faithfully: the rows go through bulk_create."""


def json_ready(value: Any) -> Any:
    """A prepared database value as JSON carries it (for `json_to_recordset`); _NotJSON when
    JSON cannot carry it faithfully."""
    value = getattr(value, "obj", value)  # a JSONField's prepared value is an adapter
    if value is None or isinstance(value, str | bool | int | float | dict | list):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise _NotJSON(type(value).__name__)


def bulk_insert(objs: Sequence[M]) -> list[M]:
    """Insert `objs` (all of one model, none saved yet) and set their primary keys, in one
    statement; returns them. Like `bulk_create`, it sends no signals and calls no `save()`."""
    objs = list(objs)
    if not objs:
        return objs
    model = type(objs[0])
    manager = model._default_manager
    db = router.db_for_write(model)
    connection = connections[db]
    opts = model._meta
    pk = opts.pk
    if (
        connection.vendor != "postgresql"
        or not isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
        or any(o.pk is not None or type(o) is not model for o in objs)
    ):
        return manager.bulk_create(objs)
    columns = [f for f in opts.concrete_fields if f is not pk]
    values = [[f.pre_save(obj, add=True) for f in columns] for obj in objs]  # type: ignore[arg-type]
    # A column with a database default that no row sets is left to the database.
    kept = [
        j
        for j in range(len(columns))
        if not all(isinstance(row[j], DatabaseDefault) for row in values)
    ]
    fields = [columns[j] for j in kept]
    try:
        records = []
        for n, row in enumerate(values):
            record: dict[str, Any] = {"n": n}
            for i, j in enumerate(kept):
                if hasattr(row[j], "resolve_expression"):
                    raise _NotJSON("expression")  # some rows set it, others not
                record[f"c{i}"] = json_ready(columns[j].get_db_prep_save(row[j], connection))
            records.append(record)
        body = json.dumps(records, separators=(",", ":"))
    except _NotJSON:
        return manager.bulk_create(objs)
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(f.column)) for f in fields)
    selected = ", ".join(f"v.c{i}" for i in range(len(fields)))
    record_type = ", ".join(f"c{i} {f.db_type(connection)}" for i, f in enumerate(fields))
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({names}) SELECT {selected} "  # noqa: S608
        f"FROM json_to_recordset(%s::json) AS v(n integer, {record_type}) ORDER BY v.n "
        f"RETURNING {quote(str(pk.column))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [body])
        # Rows take their ids from one sequence in the order they are inserted, which is
        # the ORDER BY's: sorted, the ids line up with `objs`.
        ids = sorted(row[0] for row in cursor.fetchall())
    for obj, pk_value in zip(objs, ids, strict=True):
        obj.pk = pk_value
        obj._state.adding = False
        obj._state.db = db
    return objs
