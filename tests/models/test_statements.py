"""models/statements.py: each compiled statement sends what peewee would have sent and
answers what peewee would have answered, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import peewee
import pytest

from models import Order, OrderEvent, Outbox, Product, Reservation, WebhookEvent, statements
from models.db import bind_database, database_proxy, insert_new, is_postgres, prepared_on
from models.statuses import OrderState, ReservationStatus

pytestmark = pytest.mark.usefixtures("db")

NUMBERS = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test on SQLite, then on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, list[Any]]]]:
    """The (SQL, parameters) the database is sent from here on."""
    log: list[tuple[str, list[Any]]] = []
    execute_sql = peewee.Database.execute_sql

    def recorded(self: peewee.Database, sql: str, params: Any = None) -> Any:
        log.append((sql, list(params or ())))
        return execute_sql(self, sql, params)

    monkeypatch.setattr(peewee.Database, "execute_sql", recorded)
    yield log


def order_fields(**changes: Any) -> dict[str, Any]:
    """The columns of a new order without defaults, each call a new order."""
    n = next(NUMBERS)
    return {
        "id": f"order-{n}",
        "order_number": f"ORD-{n}",
        "idempotency_key": f"key-{n}",
        "email": "ada@example.com",
        "line_items": [{"sku": "TEE", "quantity": 2, "amount": 2000}],
        "subtotal": 4000,
        "total": 4000,
        "currency": "usd",
        "shipping_address": {"name": "Ada", "country": "US"},
        "billing_address": None,
        "reservation_id": f"res-{n}",
        "checkout_token_hash": "0" * 64,
        **changes,
    }


def columns(instance: peewee.Model, *leave_out: str) -> dict[str, Any]:
    """An instance's column values, some left out."""
    return {k: v for k, v in instance.__data__.items() if k not in leave_out}


class TestCreate:
    def test_an_order_is_written_as_model_create_writes_it(self, sent: list[Any]) -> None:
        ours = statements.create(Order, **order_fields())
        theirs = Order.create(**order_fields())
        assert isinstance(ours, Order) and not ours.is_dirty()
        (sql, params), _ = sent
        expected = Order.insert(columns(ours)).sql()  # peewee's text for the same row
        assert (sql, params) == (expected[0], list(expected[1]))
        read = Order.get_by_id(ours.id)
        assert set(ours.__data__) == set(theirs.__data__)  # the fields given and defaulted
        assert {name: read.__data__[name] for name in ours.__data__} == ours.__data__
        unique = ("id", "order_number", "idempotency_key", "reservation_id")
        moments = ("created_at", "updated_at")
        assert columns(read, *unique, *moments) == columns(
            Order.get_by_id(theirs.id), *unique, *moments
        )
        assert read.state == OrderState.PENDING and read.discount == 0

    def test_an_auto_increment_key_is_read_back(self, sent: list[Any]) -> None:
        order = statements.create(Order, **order_fields())
        event = statements.create(OrderEvent, order=order, type="ORDER_CREATED", payload={"a": 1})
        assert isinstance(event.id, int)
        assert sent[-1][0].endswith('RETURNING "order_event"."id"')
        read = OrderEvent.get_by_id(event.id)
        assert columns(read) == columns(event)  # every column of an event is given or defaulted
        assert read.payload == {"a": 1} and read.actor == "system"
        assert event.order.id == order.id  # the relation, as Model.create leaves it

    def test_many_rows_go_in_one_statement_each_given_its_own_key(self, sent: list[Any]) -> None:
        order = statements.create(Order, **order_fields())
        before = len(sent)
        rows = [
            {"order": order.id, "type": kind, "payload": {"n": n}, "actor": "worker"}
            for n, kind in enumerate(["ORDER_CREATED", "STOCK_HELD", "PAYMENT_INTENT_CREATED"])
        ]
        events = statements.create_many(OrderEvent, rows)
        assert len(sent) == before + 1
        sql, params = sent[-1]
        trail = list(
            OrderEvent.select().where(OrderEvent.order == order.id).order_by(OrderEvent.id)
        )
        assert [columns(e) for e in trail] == [columns(e) for e in events]
        assert [e.type for e in events] == ["ORDER_CREATED", "STOCK_HELD", "PAYMENT_INTENT_CREATED"]
        assert [e.id for e in events] == sorted(e.id for e in events)
        expected = OrderEvent.insert_many(
            [columns(e, "id") for e in events], fields=[OrderEvent.order, OrderEvent.ts,
                                                        OrderEvent.type, OrderEvent.payload,
                                                        OrderEvent.actor]
        ).returning(OrderEvent.id).sql()  # fmt: skip
        assert (sql, params) == (expected[0], list(expected[1]))

    def test_rows_naming_different_fields_are_refused(self) -> None:
        with pytest.raises(ValueError, match="same fields"):
            statements.create_many(Order, [order_fields(), order_fields(user_id="u-1")])
        assert statements.create_many(Order, []) == []
        assert Order.select().count() == 0

    def test_a_duplicate_key_raises_as_peewee_does(self) -> None:
        fields = order_fields()
        statements.create(Order, **fields)
        with pytest.raises(peewee.IntegrityError), Order._meta.database.atomic():
            statements.create(Order, **{**order_fields(), "id": fields["id"]})


class TestGet:
    def test_a_row_by_its_key_is_the_instance_peewee_reads(self, sent: list[Any]) -> None:
        order = statements.create(Order, **order_fields(promotion={"code": "X"}))
        sent.clear()
        ours = statements.get(Order, order.id)
        theirs = Order.get_or_none(Order.id == order.id)
        assert ours is not None and theirs is not None
        assert columns(ours) == columns(theirs) and not ours.is_dirty()
        assert isinstance(ours.created_at, datetime) and ours.promotion == {"code": "X"}
        sql, params = sent[0]
        assert (sql, params) == (*Order.select().where(Order.id == order.id).sql()[:1], [order.id])
        assert statements.get(Order, "no-such-order") is None

    def test_by_a_unique_field(self) -> None:
        order = statements.create(Order, **order_fields())
        held = statements.create(
            Reservation, id=order.reservation_id, order=order, items=[["TEE", 2]],
            expires_at=datetime(2030, 1, 1),
        )  # fmt: skip
        found = statements.get(Reservation, order.id, by=Reservation.order)
        assert found is not None
        assert columns(found) == columns(Reservation.get(Reservation.order == order.id))
        assert columns(found) == columns(held)
        assert found.status == ReservationStatus.HELD and found.order.id == order.id

    def test_many_rows_by_their_keys(self, sent: list[Any]) -> None:
        for sku in ("A", "B", "C"):
            Product.create(sku=sku, name=sku, price_amount=100, currency="usd", stock_on_hand=1)
        sent.clear()
        found = statements.get_many(Product, ["C", "A", "X"])
        theirs = Product.select().where(Product.sku.in_(["C", "A", "X"]))
        assert {p.sku: columns(p) for p in found} == {p.sku: columns(p) for p in theirs}
        assert {p.sku for p in found} == {"C", "A"} and not any(p.is_dirty() for p in found)
        expected = Product.select().where(Product.sku.in_(["C", "A", "X"])).sql()
        assert sent[0] == (expected[0], list(expected[1]))
        assert statements.get_many(Product, []) == []

    def test_lock_is_for_update_where_the_database_has_it(self, sent: list[Any]) -> None:
        order = statements.create(Order, **order_fields())
        db = Order._meta.database
        with db.atomic():
            locked = statements.get(Order, order.id, lock=True)
        assert locked is not None and locked.id == order.id
        selects = [sql for sql, _ in sent if sql.startswith("SELECT")]
        assert selects[-1].endswith(" FOR UPDATE") == bool(db.obj.for_update)

    def test_a_row_with_columns_of_the_row_it_points_to(self, sent: list[Any]) -> None:
        order = statements.create(Order, **order_fields(discount=500))
        outbox = Outbox.create(key=f"receipt:{order.id}", kind="receipt", order=order)
        wanted = (Order.id, Order.email, Order.line_items, Order.discount, Order.capture_before)
        db = Order._meta.database
        sent.clear()
        with db.atomic():
            ours = statements.get_joined(Outbox, outbox.id, Outbox.order, wanted, lock=True)
        selects = [(sql, params) for sql, params in sent if sql.startswith("SELECT")]
        query = Outbox.select(Outbox, *wanted).join(Order).where(Outbox.id == outbox.id)
        if db.obj.for_update:
            query = query.for_update(of=Outbox)
        theirs = query.get()
        assert ours is not None and columns(ours) == columns(theirs) and not ours.is_dirty()
        assert columns(ours.order) == columns(theirs.order)  # the five columns, converted
        assert ours.order.line_items == order.line_items and ours.order.discount == 500
        assert selects == [(query.sql()[0], [outbox.id])]
        assert statements.get_joined(Outbox, -1, Outbox.order, wanted) is None

    def test_a_shape_is_compiled_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        first = statements.create(Order, **order_fields())
        statements.get(Order, first.id)
        built: list[Any] = []
        parse = peewee.Context.parse
        monkeypatch.setattr(
            peewee.Context, "parse", lambda self, node: built.append(node) or parse(self, node)
        )
        second = statements.create(Order, **order_fields())
        assert statements.get(Order, second.id) is not None
        assert built == []  # no query built by peewee: both texts came from the cache


class TestUpdate:
    def test_compare_and_set_changes_the_row_once(self, sent: list[Any]) -> None:
        order = statements.create(Order, **order_fields())
        sent.clear()
        now = datetime(2030, 1, 2, 3, 4, 5)
        changes = {Order.updated_at: now, Order.state: OrderState.PAID}
        assert statements.update(Order, order.id, changes, expect={Order.state: "PENDING"}) == 1
        assert statements.update(Order, order.id, changes, expect={Order.state: "PENDING"}) == 0
        expected = (
            Order.update(changes).where((Order.id == order.id) & (Order.state == "PENDING")).sql()
        )
        assert sent[0] == (expected[0], list(expected[1]))
        read = Order.get_by_id(order.id)
        assert (read.state, read.updated_at) == ("PAID", now)

    def test_an_expected_none_is_is_null_and_the_row_comes_back(self) -> None:
        order = statements.create(Order, **order_fields())
        values = {Order.payment_intent_id: "pi_1", Order.client_secret: "pi_1_secret"}
        unset = {Order.payment_intent_id: None}
        updated = statements.update_returning(Order, order.id, values, expect=unset)
        assert updated is not None and not updated.is_dirty()
        assert columns(updated) == columns(Order.get_by_id(order.id))
        assert updated.payment_intent_id == "pi_1" and updated.line_items == order.line_items
        assert statements.update_returning(Order, order.id, values, expect=unset) is None
        assert statements.update_returning(Order, "no-such-order", values) is None

    def test_save_writes_the_fields_named(self) -> None:
        order = statements.create(Order, **order_fields())
        order.email, order.total = "grace@example.com", 1
        assert statements.save(order, Order.email) == 1
        read = Order.get_by_id(order.id)
        assert (read.email, read.total) == ("grace@example.com", 4000)
        assert order.dirty_field_names == ["total"]

    def test_an_expression_is_refused(self) -> None:
        Product.create(sku="TEE", name="Tee", price_amount=2000, currency="usd", stock_on_hand=5)
        with pytest.raises(TypeError, match="plain values"):
            statements.update(Product, "TEE", {Product.stock_on_hand: Product.stock_on_hand - 1})
        assert Product.get_by_id("TEE").stock_on_hand == 5


class TestRun:
    def test_an_expression_is_sent_as_peewee_sends_it(self, sent: list[Any]) -> None:
        Product.create(sku="TEE", name="Tee", price_amount=2000, currency="usd", stock_on_hand=5)
        now = datetime(2030, 1, 2, 3, 4, 5)

        def query(qty: int) -> peewee.Query:
            taken = Product.update(stock_on_hand=Product.stock_on_hand - qty, updated_at=now)
            return taken.where(Product.sku == "TEE")

        sent.clear()
        for qty in (2, 1):
            statements.run("test.take", lambda q=qty: query(q), [qty, now, "TEE"])
        sql, params = query(1).sql()
        assert sent == [(sql, [2, now, "TEE"]), (sql, list(params))]
        read = Product.get_by_id("TEE")
        assert (read.stock_on_hand, read.updated_at) == (2, now)

    def test_parameters_peewee_would_not_send_are_refused(self) -> None:
        Product.create(sku="TEE", name="Tee", price_amount=2000, currency="usd", stock_on_hand=5)
        query = Product.update(stock_on_hand=Product.stock_on_hand - 1).where(Product.sku == "TEE")
        with pytest.raises(TypeError, match="takes"):
            statements.run("test.swapped", lambda: query, ["TEE", 1])  # not peewee's order
        assert Product.get_by_id("TEE").stock_on_hand == 5

    def test_rows_become_the_instances_peewee_reads(self) -> None:
        order = statements.create(Order, **order_fields(promotion={"code": "X"}))
        OrderEvent.create(order=order, type="ORDER_CREATED", payload={"n": 1})
        query = OrderEvent.select(OrderEvent, Order).join(Order).where(Order.id == order.id)
        row = statements.run("test.joined", lambda: query, [order.id]).fetchone()
        mine = statements.width(OrderEvent)
        event = statements.instance(OrderEvent, row[:mine])
        theirs = query.get()
        assert columns(event) == columns(theirs) and not event.is_dirty()
        assert columns(statements.instance(Order, row[mine:])) == columns(theirs.order)
        assert event.payload == {"n": 1} and isinstance(event.ts, datetime)
        some = statements.instance(Order, [order.id, {"code": "X"}], [Order.id, Order.promotion])
        assert some.__data__ == {"id": order.id, "promotion": {"code": "X"}}


class TestInsertNew:
    def read(self, sku: str) -> statements.Read:
        def query() -> peewee.Select:
            return Product.select(Product.sku, Product.price_amount).where(Product.sku == sku)

        return statements.Read("test.product", query, [sku])

    def test_the_row_peewee_inserts_and_the_row_read(self, sent: list[Any]) -> None:
        Product.create(sku="MUG", name="Mug", price_amount=1200, currency="usd")
        fields = {"event_id": "evt_1", "type": "t", "payload": {"id": "evt_1"}}
        sent.clear()
        new_id, row = statements.insert_new_beside(
            WebhookEvent, fields, WebhookEvent.id, self.read("MUG")
        )
        assert len(sent) == (1 if is_postgres() else 2)
        assert row == ("MUG", 1200)
        ours = WebhookEvent.get(WebhookEvent.event_id == "evt_1")
        assert new_id == ours.id
        theirs_id = insert_new(
            WebhookEvent.insert(event_id="evt_2", type="t", payload={"id": "evt_1"}),
            WebhookEvent.id,
        )
        theirs = WebhookEvent.get_by_id(theirs_id)
        assert columns(ours, "id", "event_id", "created_at") == columns(
            theirs, "id", "event_id", "created_at"
        )
        assert isinstance(ours.created_at, datetime) and ours.status == "received"

    def test_an_existing_row_and_nothing_to_read(self) -> None:
        fields = {"event_id": "evt_3", "type": "t", "payload": {}}
        first = statements.insert_new(WebhookEvent, fields, WebhookEvent.id)
        again, row = statements.insert_new_beside(
            WebhookEvent, fields, WebhookEvent.id, self.read("NONE")
        )
        assert first is not None and again is None and row is None
        assert WebhookEvent.select().where(WebhookEvent.event_id == "evt_3").count() == 1


class TestCreateManyBeside:
    def test_the_rows_written_and_the_rows_read_before(self, sent: list[Any]) -> None:
        order = statements.create(Order, **order_fields())
        first = statements.create(OrderEvent, order=order, type="ORDER_CREATED", payload={})

        def trail() -> peewee.Select:
            return OrderEvent.select().where(OrderEvent.order == order.id)

        read = statements.Read("test.trail", trail, [order.id])
        rows = [{"order": order, "type": t, "payload": {"n": n}} for n, t in enumerate("AB")]
        sent.clear()
        written, earlier = statements.create_many_beside(OrderEvent, rows, read)
        assert len(sent) == (1 if is_postgres() else 2)
        assert [statements.instance(OrderEvent, row).__data__ for row in earlier] == [
            OrderEvent.get_by_id(first.id).__data__
        ]
        theirs = list(trail().where(OrderEvent.id != first.id).order_by(OrderEvent.id))
        assert [columns(e) for e in written] == [columns(e) for e in theirs]
        assert not any(e.is_dirty() for e in written)
        _, nothing = statements.create_many_beside(OrderEvent, rows[:1], self.none())
        assert nothing == []

    def none(self) -> statements.Read:
        return statements.Read(
            "test.no_trail", lambda: OrderEvent.select().where(OrderEvent.order == "none"), ["none"]
        )


@pytest.fixture
def pooled(db: peewee.Database, database_url: str) -> Iterator[Any]:
    """The models bound to a pool of two connections on the migrated PostgreSQL
    database, preparing the compiled statements (as the web and the worker bind it)."""
    if not is_postgres(db):
        pytest.skip("PostgreSQL prepares; SQLite sends the text")
    db.close()
    pool = bind_database(database_url, pool_size=2, prepared_statements=True)
    yield pool
    pool.close_all()
    database_proxy.initialize(db)


def session_statements(pool: Any) -> set[str]:
    """The names prepared in this thread's connection's server session."""
    rows = pool.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()
    return {row[0] for row in rows}


class TestPrepared:
    def test_prepared_once_per_connection_then_executed(self, pooled: Any, sent: list[Any]) -> None:
        first = statements.create(Order, **order_fields())
        again = statements.create(Order, **order_fields(email="grace@example.com"))
        prepare, execute = (sql for sql, _ in sent)
        assert prepare.startswith("PREPARE stmt_") and "; EXECUTE stmt_" in prepare
        assert execute.startswith("EXECUTE stmt_") and "$1" not in execute
        assert execute.split("(")[0] == "EXECUTE " + prepare.split()[1]  # the same name
        assert Order.get_by_id(again.id).email == "grace@example.com" and first.id != again.id
        assert session_statements(pooled) == prepared_on(pooled).names  # what we think it holds

    def test_answers_as_the_text_does(self, pooled: Any) -> None:
        order = statements.create(Order, **order_fields())
        for _ in range(2):  # prepared, then executed
            read = statements.get(Order, order.id, lock=True)
            assert read is not None and columns(read) == columns(Order.get_by_id(order.id))
            values = {Order.payment_intent_id: "pi_1"}
            unset = {Order.payment_intent_id: None}
            updated = statements.update_returning(Order, order.id, values, expect=unset)
            assert updated is not None and updated.payment_intent_id == "pi_1"
            assert statements.update(Order, order.id, values, expect=unset) == 0
            Order.update(payment_intent_id=None).where(Order.id == order.id).execute()

    def test_a_failure_while_preparing_deallocates_before_the_next(
        self, pooled: Any, sent: list[Any]
    ) -> None:
        fields = order_fields()
        Order.create(**fields)  # peewee's own INSERT: the shape is not prepared yet
        with pytest.raises(peewee.IntegrityError), pooled.atomic():
            statements.create(Order, **{**order_fields(), "id": fields["id"]})
        assert prepared_on(pooled).unsure  # did the PREPARE run before the EXECUTE failed?
        sent.clear()
        statements.create(Order, **order_fields())
        assert sent[0][0].startswith("DEALLOCATE ALL; PREPARE stmt_")
        assert not prepared_on(pooled).unsure
        assert session_statements(pooled) == prepared_on(pooled).names

    def test_a_session_reset_under_it_raises_once_then_prepares_again(self, pooled: Any) -> None:
        order = statements.create(Order, **order_fields())
        assert statements.get(Order, order.id) is not None  # prepared
        pooled.execute_sql("DISCARD ALL")  # what a pooler in front would do
        with pytest.raises(peewee.DatabaseError):
            statements.get(Order, order.id)
        again = statements.get(Order, order.id)
        assert again is not None and again.id == order.id

    def test_a_new_connection_prepares_anew(self, pooled: Any) -> None:
        order = statements.create(Order, **order_fields())
        pooled.manual_close()  # the pool replaces it (stale, broken)
        assert prepared_on(pooled).names == set()
        assert statements.get(Order, order.id) is not None
        assert session_statements(pooled) == prepared_on(pooled).names != set()

    def test_switched_off_the_text_is_sent(self, pooled: Any, sent: list[Any]) -> None:
        pooled.prepares = False
        statements.create(Order, **order_fields())
        assert prepared_on(pooled) is None and sent[0][0].startswith("INSERT")
