"""PostgreSQL's own CPU per statement of one paid order (issue 20).

Two steps, both on this machine's PostgreSQL (``DATABASE_URL``'s server):

``python -m devstack.perf.pg_statements capture [--out FILE]``
    Runs tests/services/test_order_cost.py with this module as a pytest plugin, which
    records every statement peewee sends during the test itself (its fixture pays a first
    order to warm up; the test pays the second): the SQL, its parameters, each ``BEGIN``
    and ``COMMIT``, and the id an ``INSERT … RETURNING`` gave. Written to
    ``var/perf/pg-statements.json``.

``python -m devstack.perf.pg_statements replay [--orders N] [--analyze] [--prepare] [--explain]``
    Creates a scratch database, migrates it to head (``models.migrate``, so the indexes
    are this checkout's), stocks the captured order's SKU, then sends the captured
    statements N times (default 300) on one connection, as peewee does (autocommit, with
    explicit ``BEGIN``/``COMMIT``), each order with fresh identifiers. Around each
    statement it reads the backend's on-CPU time (``/proc/<pg_backend_pid()>/schedstat``,
    nanoseconds; ``stat``'s utime + stime tick only every 10 ms) and prints the mean and
    median per statement, and the total per order. ``--explain`` then runs one more order
    with each statement under ``EXPLAIN (ANALYZE, BUFFERS)``. The scratch database is
    dropped afterwards. ``--analyze`` runs ``ANALYZE`` after the warm-up orders: the
    planner's statistics of a database in use (a fresh one, as the cost bench's, has none,
    and some plans differ). ``--prepare`` sends each statement as a server-side prepared
    one (what parsing and planning cost, by difference). ``--file`` reads another capture.

The replay measures the server alone: no Python between the statements but the driver's,
no other connection, the table growing by N orders. Run the replay of two checkouts
alternately to compare schemas (the capture stays the same file).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = ROOT / "var" / "perf" / "pg-statements.json"
CAPTURE_ENV = "PG_STATEMENTS_CAPTURE"
TEST = "tests/services/test_order_cost.py"
# Identifiers an order makes unique (order and reservation UUIDs, order numbers,
# idempotency keys, Stripe and shop event ids, intent and charge ids): each replayed order
# rewrites their last 8 characters, keeping their length and shape.
TOKEN = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|ORD-[A-Z0-9]{8}|order-cost-\d+|evt_\w+|(?:pi|ch)_fake_\d+"
)
# A parameter compared with a serial id: `"table_or_alias"."id" = %s`.
ID_PARAMETER = re.compile(r'"(\w+)"\."id" = $')


# --- Capture (a pytest plugin) --------------------------------------------------------


class Recorder:
    """The statements peewee sends while :attr:`on`, in order, from every thread."""

    def __init__(self) -> None:
        self.on = False
        self.statements: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, sql: str, params: Any = (), returned: Any = None) -> None:
        """One statement (``BEGIN`` and ``COMMIT`` too)."""
        if self.on:
            with self.lock:
                entry = {"sql": sql, "params": [_encode(p) for p in params or ()]}
                if returned is not None:
                    entry["returned"] = returned
                self.statements.append(entry)


def _encode(value: Any) -> Any:
    return {"$dt": value.isoformat()} if isinstance(value, datetime) else value


def _decode(value: Any) -> Any:
    return datetime.fromisoformat(value["$dt"]) if isinstance(value, dict) else value


RECORDER = Recorder()


def _install(recorder: Recorder) -> None:
    """Record at peewee's ``execute_sql``, ``begin``, ``commit`` and ``rollback``."""
    import peewee

    execute_sql = peewee.Database.execute_sql

    def recorded(self: Any, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        cursor = execute_sql(self, sql, params, *args, **kwargs)
        returned = None
        if recorder.on and _inserted_into(sql) and " RETURNING " in sql:
            row = cursor.fetchone()  # peeked, then put back for peewee to read
            cursor.scroll(0, mode="absolute")
            returned = row[0] if row else None
        recorder.add(sql, params, returned)
        return cursor

    peewee.Database.execute_sql = recorded  # type: ignore[method-assign]
    for owner in (peewee.Database, peewee.PostgresqlDatabase):
        for name in ("begin", "commit", "rollback"):
            original = owner.__dict__.get(name)
            if original is not None:
                setattr(owner, name, _sending(recorder, name.upper(), original))


def _sending(recorder: Recorder, sql: str, original: Any) -> Any:
    def send(*args: Any, **kwargs: Any) -> Any:
        recorder.add(sql)
        return original(*args, **kwargs)

    return send


def pytest_configure(config: Any) -> None:
    """Hook peewee when the capture asked for it."""
    if os.environ.get(CAPTURE_ENV):
        _install(RECORDER)


def pytest_runtest_call(item: Any) -> None:
    """Record the test's own statements only (not its fixtures')."""
    RECORDER.on = True


def pytest_runtest_teardown(item: Any) -> None:
    """Stop recording when the test body is done."""
    RECORDER.on = False


def pytest_unconfigure(config: Any) -> None:
    """Write the order's statements: up to its last ``COMMIT`` (the test's own check after
    it is not the order's)."""
    target = os.environ.get(CAPTURE_ENV)
    if not target or not RECORDER.statements:
        return
    statements = RECORDER.statements
    last = max(i for i, s in enumerate(statements) if s["sql"] == "COMMIT")
    Path(target).write_text(json.dumps(statements[: last + 1], indent=1))


def capture(out: Path) -> int:
    """Run the order-cost test with this plugin; the statements go to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, CAPTURE_ENV: str(out)}
    command = [sys.executable, "-m", "pytest", TEST, "-q", "-x", "-p", "no:cacheprovider"]
    command += ["-p", "devstack.perf.pg_statements"]
    code = subprocess.call(command, cwd=ROOT, env=env)
    if code == 0:
        print(f"{len(json.loads(out.read_text()))} statements -> {out}")
    return code


# --- Replay ---------------------------------------------------------------------------


def shape(sql: str) -> str:
    """A short name for a statement: its verb, table, and what it sets or locks."""
    words = sql.split()
    verb = words[0]
    if verb == "WITH":  # an INSERT beside a read (models.statements.insert_new_beside)
        return f"WITH ({shape(sql.split('(', 1)[1].split(') SELECT')[0])}) SELECT"
    table = {
        "SELECT": r'FROM "(\w+)"',
        "INSERT": r'INTO "(\w+)"',
        "UPDATE": r'UPDATE "(\w+)"',
        "DELETE": r'FROM "(\w+)"',
    }.get(verb)
    if table is None:
        return verb
    found = re.search(table, sql)
    name = f"{verb} {found[1] if found else '?'}"
    if verb == "UPDATE":
        name += " SET " + ",".join(re.findall(r'"(\w+)" = ', sql.split(" WHERE ")[0]))
    if " JOIN " in sql:
        name += " JOIN " + ",".join(re.findall(r'JOIN "(\w+)"', sql))
    if "FOR UPDATE" in sql:
        name += " FOR UPDATE"
    if "ON CONFLICT" in sql:
        name += " ON CONFLICT"
    return name


def _fresh(token: str) -> str:
    fresh = secrets.token_hex(4)
    return token[:-8] + (fresh.upper() if token.startswith("ORD-") else fresh)


class Order:
    """One replay of the captured statements, with its own identifiers and ids."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.ids: dict[tuple[str, int], int] = {}  # (table, captured id) -> this order's

    def text(self, value: str) -> str:
        """``value`` with this order's identifiers."""
        return TOKEN.sub(lambda m: self.tokens.setdefault(m[0], _fresh(m[0])), value)

    def params(self, sql: str, params: list[Any]) -> list[Any]:
        """The captured parameters, rewritten for this order."""
        pieces = sql.split("%s")
        out = []
        for index, value in enumerate(params):
            value = _decode(value)
            if isinstance(value, str):
                value = self.text(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                column = ID_PARAMETER.search(pieces[index])
                table = _table_of(sql, column[1]) if column else None
                value = self.ids.get((table, value), value) if table else value
            out.append(value)
        return out


def _table_of(sql: str, name: str) -> str:
    alias = re.search(rf'"(\w+)" AS "{name}"', sql)
    return alias[1] if alias else name


def _inserted_into(sql: str) -> str | None:
    """The table an INSERT writes (also one in a leading ``WITH "new" AS (…)``)."""
    found = re.match(r'(?:WITH "\w+" AS \()?INSERT INTO "(\w+)"', sql)
    return found[1] if found else None


def backend_ns(pid: int) -> int:
    """The backend's time on a CPU so far, in nanoseconds."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def send(cursor: Any, sql: str, params: list[Any], prepared: dict[str, str] | None) -> None:
    """Run ``sql``; with ``prepared``, as a server-side prepared statement (``PREPARE`` once
    per connection, then ``EXECUTE``: parsed and planned once, a generic plan after five
    runs where it costs no more), as a driver with prepared statements would."""
    if prepared is None or sql in ("BEGIN", "COMMIT"):
        cursor.execute(sql, params)
        return
    name = prepared.get(sql)
    if name is None:
        name = prepared[sql] = f"s{len(prepared)}"
        pieces = sql.split("%s")
        numbered = "".join(f"{piece}${i}" for i, piece in enumerate(pieces[:-1], 1))
        cursor.execute(f"PREPARE {name} AS {numbered}{pieces[-1]}")
    cursor.execute(
        f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else (f"EXECUTE {name}"),
        params,
    )


def run_order(
    cursor: Any,
    pid: int,
    statements: list[dict[str, Any]],
    *,
    explain: bool = False,
    prepared: dict[str, str] | None = None,
) -> list[int]:
    """Send one order's statements; each one's backend nanoseconds (or print plans)."""
    order = Order()
    spent = []
    for entry in statements:
        sql, params = entry["sql"], order.params(entry["sql"], entry["params"])
        table = _inserted_into(sql)
        if explain and sql not in ("BEGIN", "COMMIT"):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n    ".join(row[0] for row in cursor.fetchall())
            print(f"\n{shape(sql)}\n    {plan}")
            if table and isinstance(entry.get("returned"), int):
                cursor.execute("SELECT lastval()")
                order.ids[(table, entry["returned"])] = cursor.fetchone()[0]
            continue
        before = backend_ns(pid)
        send(cursor, sql, params, prepared)
        rows = cursor.fetchall() if cursor.description else []
        spent.append(backend_ns(pid) - before)
        if table and isinstance(entry.get("returned"), int) and rows:
            order.ids[(table, entry["returned"])] = rows[0][0]
    return spent


def stock_up(db: Any, statements: list[dict[str, Any]]) -> None:
    """The SKUs the order decrements, with stock for every replay."""
    from models import Product

    for entry in statements:
        if entry["sql"].startswith('UPDATE "product"'):
            sku = entry["params"][-1]
            Product.insert(
                sku=sku, name=sku, description="", price_amount=1500, currency="usd",
                stock_on_hand=10**9, active=True,
            ).on_conflict_ignore().execute()  # fmt: skip


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A database of its own on ``url``'s server, dropped afterwards."""
    import psycopg2

    name = f"pg_statements_{os.getpid()}_{secrets.token_hex(3)}"
    admin = psycopg2.connect(url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(url)._replace(path=f"/{name}"))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def replay(
    statements: list[dict[str, Any]],
    url: str,
    orders: int,
    *,
    explain: bool,
    analyze: bool,
    prepare: bool,
) -> None:
    """Send the order ``orders`` times on a database migrated to head; print the backend's
    CPU per statement and per order (with ``analyze``, the planner's statistics are taken
    after the warm-up orders, as autovacuum would on a database in use)."""
    from models.db import bind_database, close_database
    from models.migrate import apply_migrations

    with scratch_database(url) as scratch:
        db = bind_database(scratch)
        apply_migrations(db)
        stock_up(db, statements)
        close_database()
        import psycopg2

        connection = psycopg2.connect(scratch)
        connection.autocommit = True  # as peewee: BEGIN and COMMIT are sent
        cursor = connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        prepared: dict[str, str] | None = {} if prepare else None
        for _ in range(max(orders // 10, 5)):  # caches, plans, the first pages
            run_order(cursor, pid, statements, prepared=prepared)
        if analyze:
            cursor.execute("ANALYZE")
        spent = [run_order(cursor, pid, statements, prepared=prepared) for _ in range(orders)]
        report(statements, spent)
        report_updates(cursor)
        if explain:
            run_order(cursor, pid, statements, explain=True)
        connection.close()


def report(statements: list[dict[str, Any]], spent: list[list[int]]) -> None:
    """Mean and median µs per statement, and per order."""
    print(f"{'#':>3} {'mean µs':>8} {'median':>7}  statement")
    for index, entry in enumerate(statements):
        each = [order[index] / 1000 for order in spent]
        median = statistics.median(each)
        print(f"{index:>3} {statistics.fmean(each):8.1f} {median:7.1f}  {shape(entry['sql'])}")
    totals = [sum(order) / 1e6 for order in spent]
    print(
        f"per order: {statistics.fmean(totals):.2f} ms mean, {statistics.median(totals):.2f} "
        f"median, {min(totals):.2f} best ({len(statements)} statements, {len(spent)} orders)"
    )


def report_updates(cursor: Any) -> None:
    """Rows inserted and updated per table, and how many updates were HOT (no index entry
    written: no indexed column changed and the page had room)."""
    cursor.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, now
    cursor.execute("SELECT 1")
    cursor.execute(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
        "WHERE n_tup_ins + n_tup_upd > 0 ORDER BY relname"
    )
    print(f"{'table':<16} {'inserted':>9} {'updated':>8} {'HOT':>6}")
    for table, inserted, updated, hot in cursor.fetchall():
        print(f"{table:<16} {inserted:>9} {updated:>8} {hot:>6}")


def main(argv: list[str] | None = None) -> int:
    """``capture`` or ``replay`` (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m devstack.perf.pg_statements")
    parser.add_argument("step", choices=("capture", "replay"))
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE after the warm-up")
    parser.add_argument("--prepare", action="store_true", help="server-side prepared")
    args = parser.parse_args(argv)
    if args.step == "capture":
        return capture(args.file)
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    statements = json.loads(args.file.read_text())
    replay(
        statements,
        url,
        args.orders,
        explain=args.explain,
        analyze=args.analyze,
        prepare=args.prepare,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
