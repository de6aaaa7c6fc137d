"""Hot statements whose SQL is compiled once per process (issue 20).

peewee builds a query's SQL anew every time it runs one: ``Context.sql`` walks the
query's nodes, each column is quoted and aliased, the model's columns are resolved
against the cursor — about a thousand Python calls per order on the checkout's path for
SQL text that never changes. For the few shapes an order runs again and again, the text
depends only on the database's dialect, the table and the columns; the values travel as
parameters. This module asks peewee for a shape's SQL once (the first call's query, built
by peewee itself), keeps the text, and from then on sends it with
``Database.execute_sql`` and the parameters each field's ``db_value`` converts — what
peewee would have sent (tests/models/test_statements.py compares the two on SQLite and
PostgreSQL). Rows come back as model instances built as peewee builds them (each
column's ``python_value``, nothing dirty).

Each function mirrors one peewee call:

- ``create(Model, **values)`` — ``Model.create(**values)``: defaults applied, an
  auto-increment key read back (``RETURNING``).
- ``create_many(Model, rows)`` — ``[Model.create(**row) for row in rows]`` in ONE
  multi-row ``INSERT``; every row names the same fields.
- ``get(Model, key, by=Model.field, lock=False)`` — ``Model.get_or_none(by == key)``
  (``by``: the primary key unless said, else a unique field); ``lock``: ``FOR UPDATE``
  where the database has it (PostgreSQL; SQLite's writers are serialised by ``BEGIN
  IMMEDIATE`` instead).
- ``get_many(Model, keys, by=...)`` — ``list(Model.select().where(by.in_(keys)))``.
- ``get_joined(Model, key, via, columns, lock=False)`` — ``Model.select(Model, *columns)
  .join(via.rel_model).where(pk == key)`` (``lock``: ``FOR UPDATE OF`` the row of
  ``Model`` only): the row, ``row.<via>`` an instance holding only ``columns``.
- ``update(Model, key, values, expect={...})`` — ``Model.update(values).where(pk == key
  & field == value ...).execute()``: the rows changed (0 or 1); an expected value of
  ``None`` is ``IS NULL``. A compare-and-set when ``expect`` names the old values.
- ``update_returning(...)`` — the same, answering the row as it is now (a model
  instance), or None when no row matched.
- ``save(instance, *fields)`` — ``instance.save(only=fields)``.
- ``insert_new(Model, values, key)`` — ``models.db.insert_new(Model.insert(**values),
  key)``; ``insert_new_beside(..., read)`` and ``create_many_beside(Model, rows, read)``
  send a ``Read`` in the same statement on PostgreSQL (a data-modifying ``WITH``), the
  read seeing the database as before the insert.
- ``run(shape, build, params)`` — any other statement (an expression, a join on a value,
  ``RETURNING`` some columns): ``build()`` is the peewee query, asked for its SQL once per
  ``shape``; ``params`` are what it sends, in its order. ``instance(Model, values)`` makes
  a row's columns an instance, as peewee's cursor does.

For example (``lock_order`` and ``transition`` as statements)::

    order = statements.get(Order, order_id, lock=True)
    moved = statements.update(
        Order, order.id, {Order.state: PAID, Order.updated_at: utcnow()},
        expect={Order.state: PENDING},
    )  # 1, or 0 when another writer moved the order first

On a pooled PostgreSQL connection (``bind_database(..., prepared_statements=True)``,
``DATABASE_PREPARED_STATEMENTS``, on by default) each shape is a server-side prepared
statement: psycopg2 has no protocol-level prepare, so the first use on a connection sends
``PREPARE <name> AS <the SQL with $1…>; EXECUTE <name>(…)`` in one round trip, and later
uses ``EXECUTE <name>(…)`` alone, which the server neither parses nor plans again (30-180 µs
a statement). A failure while preparing leaves the session's names unknown: the next
``PREPARE`` on it starts with ``DEALLOCATE ALL``; an ``EXECUTE`` the session does not know
(a ``DISCARD``) raises, and the next use prepares again. SQLite, and PostgreSQL unpooled,
send the text.

Values must be plain: a peewee expression (``Product.stock_on_hand - 1``) changes the
SQL and is refused (TypeError); such statements stay with peewee's query builder. The
statements run in the caller's transaction, like peewee's own.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import peewee

from models.db import beside_sql, database, is_postgres, prepared_on

M = TypeVar("M", bound=peewee.Model)
Converter = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Compiled:
    """A shape's SQL text, the fields its rows answer (name and ``python_value``, in the
    order of the columns), and its server-side form (:class:`ServerSide`; None where the
    text has no ``%s`` parameters to number, as SQLite's)."""

    sql: str
    answers: tuple[tuple[str, Converter], ...] = ()
    server: ServerSide | None = None


@dataclass(frozen=True)
class ServerSide:
    """A shape as a PostgreSQL prepared statement: its name (from its text: the same in
    every process), the ``PREPARE`` and the ``EXECUTE`` taking the same parameters."""

    name: str
    prepare: str
    execute: str

    @classmethod
    def of(cls, sql: str) -> ServerSide | None:
        """``sql``'s prepared form, or None when it has no plain ``%s`` parameters."""
        if "%s" not in sql or re.search(r"%[^s]|\$", sql):
            return None
        count = itertools.count(1)
        numbered = re.sub("%s", lambda _: f"${next(count)}", sql)
        params = ", ".join(["%s"] * sql.count("%s"))
        name = "stmt_" + hashlib.sha1(sql.encode()).hexdigest()[:24]
        return cls(name, f"PREPARE {name} AS {numbered}", f"EXECUTE {name}({params})")


# (shape, database class, model, fields, ...) -> Compiled. A handful of entries per
# process; two threads compiling the same shape at once write equal values.
_compiled: dict[tuple[Any, ...], Compiled] = {}


def create(model: type[M], **values: Any) -> M:
    """``model.create(**values)`` through a statement compiled once."""
    return create_many(model, [values])[0]


def create_many(model: type[M], rows: Sequence[Mapping[str, Any]]) -> list[M]:
    """Insert ``rows`` (each ``{field name: value}``, all naming the same fields) in one
    statement; the new instances, keys set, in the order given.

    An auto-increment key comes back by ``RETURNING``; the keys are matched to the rows
    in ascending order (a sequence hands them out in the order of the ``VALUES`` list on
    PostgreSQL and SQLite alike, whatever order ``RETURNING`` lists them in).
    """
    if not rows:
        return []
    instances, compiled, params = _insert(model, rows)
    cursor = _execute(database(), compiled, params)
    return _keyed(instances, cursor.fetchall() if model._meta.auto_increment else ())


def create_many_beside(
    model: type[M], rows: Sequence[Mapping[str, Any]], read: Read
) -> tuple[list[M], list[tuple[Any, ...]]]:
    """:func:`create_many` of an auto-increment ``model``, and every row of ``read`` (in no
    particular order) as the database was before the insert: on PostgreSQL in ONE
    statement (a data-modifying ``WITH`` beside the read, as :func:`insert_new_beside`);
    SQLite sends the read, then the insert."""
    if not is_postgres():
        found = run(read.shape, read.build, read.params).fetchall()
        return create_many(model, rows), [tuple(row) for row in found]
    instances, compiled, params = _insert(model, rows)
    pk = _key(model)
    if not model._meta.auto_increment:
        raise TypeError(f"{model.__name__}: create_many_beside needs an auto-increment key")

    def both() -> tuple[str, list[Any]]:
        select_sql, select_params = read.build().sql()
        sql = (
            f'WITH "new" AS ({compiled.sql}) SELECT (SELECT array_agg("{pk.column_name}")'
            f' FROM "new"), "read".* FROM (SELECT 1) AS "one"'
            f' LEFT JOIN ({select_sql}) AS "read" ON TRUE'
        )
        return sql, [*params, *select_params]

    shape = ("create_many_beside", model, compiled.sql, read.shape)
    answered = run(shape, both, [*params, *read.params]).fetchall()
    written = _keyed(instances, [(new_id,) for new_id in answered[0][0]])
    return written, [tuple(row[1:]) for row in answered if row[1] is not None]


def _insert(
    model: type[M], rows: Sequence[Mapping[str, Any]]
) -> tuple[list[Any], Compiled, list[Any]]:
    """The new instances of ``rows`` (auto-increment keys left to the database), the
    compiled multi-row INSERT (``RETURNING`` the key where auto) and its parameters."""
    instances: list[Any] = [_new(model, row) for row in rows]
    meta = model._meta
    pk = _key(model)
    auto = bool(meta.auto_increment)
    if auto:
        for instance in instances:
            if instance.__data__.get(pk.name) is not None:
                raise ValueError(f"{model.__name__}: leave the auto-increment key to the database")
            instance.__data__.pop(pk.name, None)
    names = set(instances[0].__data__)
    if any(set(instance.__data__) != names for instance in instances[1:]):
        raise ValueError(f"{model.__name__}: every row must name the same fields")
    fields = tuple(sorted((meta.fields[name] for name in names), key=_sort_key))
    key = ("insert", type(database()), model, fields, len(instances), auto)
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = _compile_insert(model, fields, instances, auto)
        _compiled[key] = compiled
    params = [f.db_value(i.__data__[f.name]) for i in instances for f in fields]
    return instances, compiled, params


def _keyed(instances: list[Any], returned: Sequence[Sequence[Any]]) -> list[Any]:
    """``instances`` as written: each auto-increment key ``returned`` set (matched in
    ascending order: a sequence hands them out in the order of the ``VALUES`` list),
    nothing dirty."""
    model = type(instances[0])
    if model._meta.auto_increment:
        pk = _key(model)
        ids = sorted(row[0] for row in returned)
        for instance, new_id in zip(instances, ids, strict=True):
            instance.__data__[pk.name] = pk.python_value(new_id)
    for instance in instances:
        instance._dirty.clear()
    return instances


def _new(model: type[M], row: Mapping[str, Any]) -> M:
    """``model(**row)``, each callable default called only for a field ``row`` leaves
    out (peewee calls every one, then overwrites the ones given: a clock read per
    timestamp given)."""
    instance: Any = model(__no_default__=1)
    meta: Any = model._meta  # peewee's defaults, private and untyped
    data = instance.__data__
    data.update(meta._default_by_name)
    for name, default in meta._default_callable_list:
        if name not in row:
            data[name] = default()
    for name, value in row.items():
        setattr(instance, name, value)
    return instance


def get(
    model: type[M], key: Any, *, by: peewee.Field | None = None, lock: bool = False
) -> M | None:
    """``model.get_or_none(by == key)`` (``by``: the primary key, or a unique field);
    ``lock``: ``FOR UPDATE`` where the database has it."""
    field = _key(model) if by is None else by
    db = database()
    lock = lock and bool(db.for_update)
    shape = ("get", type(db), model, field, lock)
    compiled = _compiled.get(shape)
    if compiled is None:
        query = model.select().where(field == key)
        compiled = _compile(query.for_update() if lock else query, (field,), [key], model)
        _compiled[shape] = compiled
    row = _execute(db, compiled, [field.db_value(key)]).fetchone()
    return None if row is None else _instance(model, compiled, row)


def get_many(model: type[M], keys: Iterable[Any], *, by: peewee.Field | None = None) -> list[M]:
    """``list(model.select().where(by.in_(keys)))`` (``by``: the primary key unless said),
    in the database's order; compiled once per number of keys."""
    wanted = list(keys)
    if not wanted:
        return []
    field = _key(model) if by is None else by
    db = database()
    shape = ("get_many", type(db), model, field, len(wanted))
    compiled = _compiled.get(shape)
    if compiled is None:
        query = model.select().where(field.in_(wanted))
        compiled = _compile(query, (field,) * len(wanted), wanted, model)
        _compiled[shape] = compiled
    rows = _execute(db, compiled, [field.db_value(key) for key in wanted]).fetchall()
    return [_instance(model, compiled, row) for row in rows]


def get_joined(
    model: type[M],
    key: Any,
    via: peewee.ForeignKeyField,
    columns: Sequence[peewee.Field],
    *,
    lock: bool = False,
) -> M | None:
    """The row of ``model`` whose primary key is ``key``, with ``columns`` of the row its
    foreign key ``via`` points to in the same query (``row.<via>``: an instance holding
    only those); ``lock``: ``FOR UPDATE OF`` the row of ``model`` alone, where the
    database has it (the related row stays free)."""
    pk = _key(model)
    related = via.rel_model
    db = database()
    lock = lock and bool(db.for_update)
    shape = ("get_joined", type(db), model, via, tuple(columns), lock)
    compiled = _compiled.get(shape)
    if compiled is None:
        query = model.select(model, *columns).join(related, on=via == via.rel_field)
        query = query.where(pk == key)
        compiled = _compile(query.for_update(of=model) if lock else query, (pk,), [key], model)
        compiled = replace(compiled, answers=compiled.answers + _answers(columns))
        _compiled[shape] = compiled
    row = _execute(db, compiled, [pk.db_value(key)]).fetchone()
    if row is None:
        return None
    mine = len(model._meta.sorted_fields)
    instance: Any = _built(model, compiled.answers[:mine], row[:mine])
    instance.__rel__[via.name] = _built(related, compiled.answers[mine:], row[mine:])
    return instance


def update(
    model: type[peewee.Model],
    key: Any,
    values: Mapping[peewee.Field, Any],
    *,
    expect: Mapping[peewee.Field, Any] | None = None,
) -> int:
    """``model.update(values)`` of the row whose primary key is ``key`` (and whose
    ``expect`` fields hold those values; None: IS NULL): the rows changed, 0 or 1."""
    compiled, params = _update(model, key, values, expect or {}, returning=False)
    return int(_execute(database(), compiled, params).rowcount)


def update_returning(
    model: type[M],
    key: Any,
    values: Mapping[peewee.Field, Any],
    *,
    expect: Mapping[peewee.Field, Any] | None = None,
) -> M | None:
    """:func:`update`, answering the changed row as an instance (None: no row matched)."""
    compiled, params = _update(model, key, values, expect or {}, returning=True)
    row = _execute(database(), compiled, params).fetchone()
    return None if row is None else _instance(model, compiled, row)


def save(instance: peewee.Model, *fields: peewee.Field) -> int:
    """``instance.save(only=fields)``: those fields' current values written to its row."""
    row: Any = instance
    values = {field: row.__data__.get(field.name) for field in fields}
    changed = update(type(instance), row._pk, values)
    row._dirty.difference_update(field.name for field in fields)
    return changed


def run(
    shape: Any,
    build: Callable[[], peewee.Query | tuple[str, Sequence[Any]]],
    params: Sequence[Any],
) -> Any:
    """Run the statement ``build()`` makes, its SQL asked of peewee once per ``shape``
    (which must name everything that changes the text) and database; the cursor.

    ``params``: the values peewee sends for it, in its order, as the driver takes them
    (each field's ``db_value``). The first call checks them against peewee's own.
    ``build`` may answer the SQL and its parameters itself (a statement composed of
    peewee's, as :func:`insert_new_beside`'s).
    """
    db = database()
    key = ("run", type(db), shape)
    compiled = _compiled.get(key)
    if compiled is None:
        built = build()
        sql, sent = built if isinstance(built, tuple) else built.sql()
        if list(sent) != list(params):
            raise TypeError(f"models.statements: {sql!r} takes {sent!r}, not {params!r}")
        compiled = Compiled(sql, (), ServerSide.of(sql))
        _compiled[key] = compiled
    return _execute(db, compiled, list(params))


@dataclass(frozen=True)
class Read:
    """A read sent beside an insert (:func:`insert_new_beside`): ``build()`` is the
    peewee Select (its first column never NULL), ``params`` what it sends, ``shape``
    names its text (as :func:`run`'s)."""

    shape: Any
    build: Callable[[], peewee.Select]
    params: Sequence[Any]


def insert_new(model: type[peewee.Model], values: Mapping[str, Any], key: peewee.Field) -> Any:
    """``models.db.insert_new(model.insert(**values), key)``: the new row's ``key``, or
    None when a row with the same unique value existed; compiled once per set of fields."""
    return insert_new_beside(model, values, key, None)[0]


def insert_new_beside(
    model: type[peewee.Model], values: Mapping[str, Any], key: peewee.Field, read: Read | None
) -> tuple[Any, tuple[Any, ...] | None]:
    """``models.db.insert_new`` of ``model.insert(**values)``, and ``read``'s first row: on
    PostgreSQL one statement, the read seeing the database as before the insert."""
    data = _new(model, values).__data__  # the defaults peewee's INSERT would add
    fields = tuple(sorted((model._meta.fields[name] for name in data), key=_sort_key))
    params = [f.db_value(data[f.name]) for f in fields]

    def insert() -> peewee.Query:
        row = {f: data[f.name] for f in fields}
        return model.insert(row).on_conflict_ignore().returning(key)

    shape = ("insert_new", model, fields, key)
    if read is None:
        row = run(shape, insert, params).fetchone()
        return (None if row is None else row[0]), None
    if not is_postgres():  # SQLite: the read, then the insert (as models.db's)
        found = run(
            (read.shape, "limit 1"), lambda: read.build().limit(1), [*read.params, 1]
        ).fetchone()
        return insert_new_beside(model, values, key, None)[0], found
    both = run(
        (*shape, read.shape),
        lambda: beside_sql(insert(), key, read.build().limit(1)),
        [*params, *read.params, 1],
    ).fetchone()
    return both[0], (tuple(both[1:]) if both[1] is not None else None)


# (model, fields) -> their answers, for instance().
_answered: dict[tuple[Any, ...], tuple[tuple[str, Converter], ...]] = {}


def instance(
    model: type[M], values: Sequence[Any], fields: Sequence[peewee.Field] | None = None
) -> M:
    """An instance of ``model`` holding ``values``, one per field of ``fields`` (all the
    model's, in peewee's column order, unless said) as the database answered them."""
    key = (model, None if fields is None else tuple(fields))
    answers = _answered.get(key)
    if answers is None:
        answers = _answered[key] = _answers(model._meta.sorted_fields if fields is None else fields)
    return _built(model, answers, values)


def width(model: type[peewee.Model]) -> int:
    """How many columns ``model.select()`` answers (its fields)."""
    return len(model._meta.sorted_fields)


# --- running: as text, or prepared on the connection ---

# SQLSTATE invalid_sql_statement_name: EXECUTE of a name the session does not hold.
UNKNOWN_STATEMENT = "26000"


def _execute(db: peewee.Database, compiled: Compiled, params: list[Any]) -> Any:
    """Run ``compiled`` with ``params``: prepared where this thread's connection prepares
    (the ``PREPARE`` in the first ``EXECUTE``'s round trip), else as text; the cursor."""
    session = prepared_on(db)
    server = compiled.server
    if session is None or server is None:
        return db.execute_sql(compiled.sql, params)
    if server.name in session.names:
        try:
            return db.execute_sql(server.execute, params)
        except peewee.DatabaseError as exc:
            if _sqlstate(exc) == UNKNOWN_STATEMENT:  # the session was reset under us
                session.forget()
            raise
    sql = f"{server.prepare}; {server.execute}"
    if session.unsure:
        sql = f"DEALLOCATE ALL; {sql}"
    try:
        cursor = db.execute_sql(sql, params)
    except BaseException:
        # The PREPARE may or may not have run (PREPARE outlives a rolled-back transaction).
        session.forget()
        raise
    session.unsure = False
    session.names.add(server.name)
    return cursor


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver's error that peewee wrapped in ``exc``, if any (peewee
    raises its own while handling the driver's: the context)."""
    return getattr(exc.__cause__ or exc.__context__, "pgcode", None)


# --- compiling: peewee writes the SQL, once per shape ---


def _update(
    model: type[peewee.Model],
    key: Any,
    values: Mapping[peewee.Field, Any],
    expect: Mapping[peewee.Field, Any],
    *,
    returning: bool,
) -> tuple[Compiled, list[Any]]:
    """The compiled UPDATE for these fields and its parameters."""
    pk = _key(model)
    fields = tuple(sorted(values, key=_sort_key))
    equal = tuple(field for field, value in expect.items() if value is not None)
    null = tuple(field for field, value in expect.items() if value is None)
    shape = ("update", type(database()), model, fields, equal, null, returning)
    compiled = _compiled.get(shape)
    if compiled is None:
        where = pk == key
        for field in equal:
            where &= field == expect[field]
        for field in null:
            where &= field.is_null()
        query = model.update(dict(values)).where(where)
        if returning:
            query = query.returning(model)
        ordered = [values[f] for f in fields] + [key] + [expect[f] for f in equal]
        compiled = _compile(query, (*fields, pk, *equal), ordered, model if returning else None)
        _compiled[shape] = compiled
    params = [f.db_value(values[f]) for f in fields]
    params.append(pk.db_value(key))
    params.extend(f.db_value(expect[f]) for f in equal)
    return compiled, params


def _compile_insert(
    model: type[peewee.Model],
    fields: tuple[peewee.Field, ...],
    instances: list[Any],
    auto: bool,
) -> Compiled:
    """The multi-row INSERT of ``fields``, as peewee writes it for these rows."""
    rows = [{f: i.__data__[f.name] for f in fields} for i in instances]
    query = model.insert_many(rows, fields=list(fields))
    if auto:
        query = query.returning(model._meta.primary_key)
    params = tuple(f for _ in instances for f in fields)
    ordered = [i.__data__[f.name] for i in instances for f in fields]
    return _compile(query, params, ordered, None)


def _compile(
    query: peewee.Query,
    params: tuple[peewee.Field, ...],
    values: Iterable[Any],
    answers: type[peewee.Model] | None,
) -> Compiled:
    """``query``'s SQL, checked to take exactly ``values`` through ``params``' fields.

    The check runs once per shape: a value peewee would not send as one parameter (an
    expression, a subquery) or a field order that differs from peewee's is refused, not
    cached.
    """
    values = list(values)
    for value in values:
        if isinstance(value, peewee.Node):
            raise TypeError(f"models.statements takes plain values, not {value!r}")
    sql, sent = query.sql()
    ours = [field.db_value(value) for field, value in zip(params, values, strict=True)]
    if list(sent) != ours:
        raise TypeError(f"models.statements: {sql!r} does not take its values as compiled")
    fields = answers._meta.sorted_fields if answers is not None else ()
    return Compiled(sql, _answers(fields), ServerSide.of(sql))


def _answers(fields: Iterable[Any]) -> tuple[tuple[str, Converter], ...]:
    """Each field's name and ``python_value`` (None where peewee leaves the value as is)."""
    return tuple((f.name, f.python_value if f._coerce else None) for f in fields)


def _instance(model: type[M], compiled: Compiled, row: Sequence[Any]) -> M:
    """A model instance from a row of ``compiled``'s answers, as peewee's cursor builds one."""
    return _built(model, compiled.answers, row)


def _built(model: type[M], answers: Sequence[tuple[str, Converter]], values: Sequence[Any]) -> M:
    """A model instance of ``values`` (one per answer), as peewee's cursor builds one."""
    instance: Any = model(__no_default__=1)
    instance.__data__ = {
        name: (convert(value) if convert is not None else value)
        for (name, convert), value in zip(answers, values, strict=True)
    }
    return instance


def _key(model: type[peewee.Model]) -> peewee.Field:
    """The model's primary key field (a composite key or none is not a shape here)."""
    key = model._meta.primary_key
    if not isinstance(key, peewee.Field) or isinstance(key, peewee.CompositeKey):
        raise TypeError(f"{model.__name__}: models.statements needs a one-column primary key")
    return key


def _sort_key(field: peewee.Field) -> Any:
    """peewee's column order: the primary key first, then the fields as declared."""
    return getattr(field, "_sort_key")  # noqa: B009 (private to peewee, untyped)
