"""devstack/perf/pg_statements.py: replaying one order's captured statements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from devstack.perf import pg_statements
from devstack.perf.pg_statements import Order, send, shape

ORDER_ID = "bfa69d10-6964-4ff4-985e-47e80df2f600"


class TestShape:
    def test_names_verb_table_and_what_it_sets_or_locks(self) -> None:
        update = 'UPDATE "orders" SET "state" = %s, "updated_at" = %s WHERE ("orders"."id" = %s)'
        assert shape(update) == "UPDATE orders SET state,updated_at"
        select = (
            'SELECT "t1"."id" FROM "outbox" AS "t1" INNER JOIN "orders" AS "t2" ON (1) '
            'WHERE ("t1"."id" = %s) FOR UPDATE OF "t1"'
        )
        assert shape(select) == "SELECT outbox JOIN orders FOR UPDATE"
        assert shape("COMMIT") == "COMMIT"

    def test_an_insert_beside_a_read_is_named_by_its_insert(self) -> None:
        beside = (
            'WITH "new" AS (INSERT INTO "webhook_event" ("event_id") VALUES (%s) ON CONFLICT DO '
            'NOTHING RETURNING "webhook_event"."id") SELECT (SELECT "id" FROM "new"), "read".* '
            'FROM (SELECT 1) AS "one" LEFT JOIN (SELECT "t1"."id" FROM "orders" AS "t1") AS "read"'
        )
        assert shape(beside) == "WITH (INSERT webhook_event ON CONFLICT) SELECT"
        assert pg_statements._inserted_into(beside) == "webhook_event"


class TestOrderParams:
    def test_identifiers_are_fresh_per_order_and_consistent_within_one(self) -> None:
        sql = 'INSERT INTO "x" ("a", "b", "c") VALUES (%s, %s, %s)'
        params = [ORDER_ID, f"receipt:{ORDER_ID}", "order-cost-2"]
        first, second = Order(), Order()
        one, two = first.params(sql, params), second.params(sql, params)
        assert one[1] == f"receipt:{one[0]}" and len(one[0]) == len(ORDER_ID)
        assert one[0] != ORDER_ID and one[0] != two[0]
        assert one[2].startswith("orde") and one[2] != "order-cost-2"

    def test_serial_ids_follow_the_rows_this_order_inserted(self) -> None:
        order = Order()
        order.ids[("outbox", 2)] = 57
        sql = 'SELECT "t1"."id" FROM "outbox" AS "t1" WHERE ("t1"."id" = %s) LIMIT %s OFFSET %s'
        assert order.params(sql, [2, 1, 0]) == [57, 1, 0]
        other = 'UPDATE "webhook_event" SET "attempts" = %s WHERE ("webhook_event"."id" = %s)'
        assert order.params(other, [2, 2]) == [2, 2]  # not the outbox's id 2

    def test_datetimes_come_back(self) -> None:
        moment = datetime(2026, 12, 7, 5, 3, 19)
        encoded = pg_statements._encode(moment)
        assert Order().params("SELECT %s", [encoded]) == [moment]


class FakeCursor:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.sent.append((sql, params))


class TestSendPrepared:
    def test_prepares_once_then_executes(self) -> None:
        cursor, prepared = FakeCursor(), {}
        sql = 'SELECT "a" FROM "t" WHERE ("b" = %s) LIMIT %s'
        send(cursor, sql, ["x", 1], prepared)
        send(cursor, sql, ["y", 1], prepared)
        send(cursor, "COMMIT", [], prepared)
        assert cursor.sent == [
            ('PREPARE s0 AS SELECT "a" FROM "t" WHERE ("b" = $1) LIMIT $2', None),
            ("EXECUTE s0(%s, %s)", ["x", 1]),
            ("EXECUTE s0(%s, %s)", ["y", 1]),
            ("COMMIT", []),
        ]
