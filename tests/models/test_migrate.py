"""Migrations: idempotent, recorded, safe to run concurrently, reversible for tests."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from models import ALL_MODELS, ShopDelivery, ShopEvent
from models.db import bind_database, close_database, is_postgres
from models.migrate import applied_versions, apply_migrations, discover, drop_all

ALL_VERSIONS = [migration.version for migration in discover()]


class TestApplyMigrations:
    def test_creates_every_table_and_records_versions(self, db: Any) -> None:
        tables = set(db.get_tables())
        for model in ALL_MODELS:
            assert model._meta.table_name in tables
        assert applied_versions(db) == {m.version for m in discover()}

    def test_second_run_applies_nothing(self, db: Any) -> None:
        assert apply_migrations(db) == []
        assert apply_migrations(db) == []

    def test_drop_all_then_apply_restores_schema(self, db: Any) -> None:
        drop_all(db)
        assert not db.get_tables()
        assert apply_migrations(db) == [m.version for m in discover()]

    def test_migrations_are_ordered_and_numbered(self) -> None:
        versions = [m.version for m in discover()]
        assert versions == sorted(versions)
        assert versions[0] == "0001"


@pytest.mark.postgres
class TestConcurrentMigrationsOnPostgres:
    def test_two_processes_racing_apply_once(self, postgres_url: str) -> None:
        drop_all(bind_database(postgres_url))  # the session database may be migrated already
        close_database()
        results: list[list[str]] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def run() -> None:
            try:
                db = bind_database(postgres_url)
                barrier.wait()
                results.append(apply_migrations(db))
                db.close()
            except BaseException as exc:  # the assertion below reports it
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        db = bind_database(postgres_url)
        try:
            assert not errors
            assert sorted(results, key=len) == [[], [], [], [m.version for m in discover()]]
        finally:
            drop_all(db)
            close_database()


class TestCatalogMigration:
    """0002 on a database migrated before it: the product columns appear, rows stay sold."""

    def test_adds_the_columns_to_an_existing_product_table(self, db: Any) -> None:
        from playhouse.migrate import SchemaMigrator, migrate

        columns = ("image_url", "category", "brand", "active")
        migrate(*(SchemaMigrator.from_database(db).drop_column("product", c) for c in columns))
        db.execute_sql("DELETE FROM schema_migrations WHERE version = '0002'")
        db.execute_sql(
            "INSERT INTO product (sku, name, description, price_amount, currency, "
            "stock_on_hand, created_at, updated_at) VALUES "
            "('OLD', 'Old', '', 100, 'usd', 3, '2024-01-01 00:00:00', '2024-01-01 00:00:00')"
        )
        assert apply_migrations(db) == ["0002"]
        assert set(columns) <= {c.name for c in db.get_columns("product")}
        from models import Product

        old = Product.get_by_id("OLD")
        assert (old.active, old.category, old.brand, old.image_url) == (True, None, None, None)


@pytest.mark.postgres
class TestCatalogMigrationOnPostgres(TestCatalogMigration):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url


class TestShopWebhooksMigration:
    """0004 on a database migrated before it: the two shop webhook tables appear."""

    def test_adds_the_tables_to_an_older_schema(self, db: Any) -> None:
        db.drop_tables([ShopDelivery, ShopEvent])
        db.execute_sql("DELETE FROM schema_migrations WHERE version = '0004'")
        assert apply_migrations(db) == ["0004"]
        assert {"shop_events", "shop_webhook_deliveries"} <= set(db.get_tables())


class TestDisputesMigration:
    """0005 on a database migrated before it: ``orders.dispute`` appears, empty."""

    def test_adds_the_dispute_column(self, db: Any) -> None:
        from playhouse.migrate import SchemaMigrator, migrate

        migrator = SchemaMigrator.from_database(db)
        migrate(migrator.drop_index("orders", "orders_disputed"))  # 0012's, on the column
        migrate(migrator.drop_column("orders", "dispute"))
        db.execute_sql("DELETE FROM schema_migrations WHERE version = '0005'")
        assert apply_migrations(db) == ["0005"]
        assert "dispute" in {c.name for c in db.get_columns("orders")}
        assert apply_migrations(db) == []


@pytest.mark.postgres
class TestDisputesMigrationOnPostgres(TestDisputesMigration):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url


class TestDisputedIndexMigration:
    """0012 on a database migrated before it: the partial index ``orders_disputed``."""

    def test_adds_the_partial_index(self, db: Any) -> None:
        from playhouse.migrate import SchemaMigrator, migrate

        migrate(SchemaMigrator.from_database(db).drop_index("orders", "orders_disputed"))
        db.execute_sql("DELETE FROM schema_migrations WHERE version = '0012'")
        assert apply_migrations(db) == ["0012"]
        assert "orders_disputed" in {i.name for i in db.get_indexes("orders")}
        assert apply_migrations(db) == []


@pytest.mark.postgres
class TestDisputedIndexMigrationOnPostgres(TestDisputedIndexMigration):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url


class TestHostedCheckoutMigration:
    """0006 on a database migrated before it: the hosted-Checkout columns appear, the
    session id unique (one session pays one order)."""

    COLUMNS = ("checkout_session_id", "checkout_url", "checkout_expires_at")

    def test_adds_the_checkout_columns(self, db: Any) -> None:
        from playhouse.migrate import SchemaMigrator, migrate

        migrator = SchemaMigrator.from_database(db)
        migrate(migrator.drop_index("orders", "orders_checkout_session_id"))
        migrate(*(migrator.drop_column("orders", name) for name in self.COLUMNS))
        db.execute_sql("DELETE FROM schema_migrations WHERE version = '0006'")
        assert apply_migrations(db) == ["0006"]
        assert set(self.COLUMNS) <= {c.name for c in db.get_columns("orders")}
        unique = [i for i in db.get_indexes("orders") if i.columns == ["checkout_session_id"]]
        assert unique and unique[0].unique
        assert apply_migrations(db) == []


@pytest.mark.postgres
class TestHostedCheckoutMigrationOnPostgres(TestHostedCheckoutMigration):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url


class TestBuyerCustomersMigration:
    """0009 on a database migrated before it: ``buyer_customers`` appears."""

    def test_adds_the_table_to_an_older_schema(self, db: Any) -> None:
        from models import BuyerCustomer

        db.drop_tables([BuyerCustomer])
        version = next(m.version for m in discover() if m.name == "buyer_customers")
        db.execute_sql(f"DELETE FROM schema_migrations WHERE version = '{version}'")
        assert apply_migrations(db) == [version]
        assert "buyer_customers" in set(db.get_tables())


class TestPartialIndexesMigration:
    """0013 on a database migrated before it: the full indexes become partial ones, the
    unique ones still unique."""

    OLD = (
        "CREATE INDEX shop_events_dispatched ON shop_events (dispatched)",
        "CREATE INDEX outbox_status ON outbox (status)",
        "CREATE INDEX orders_user_id ON orders (user_id)",
        "CREATE INDEX orders_promotion_code ON orders (promotion_code)",
        "CREATE UNIQUE INDEX orders_payment_intent_id ON orders (payment_intent_id)",
        "CREATE UNIQUE INDEX orders_checkout_session_id ON orders (checkout_session_id)",
    )
    PARTIAL = {
        "orders": {"orders_user_id": False, "orders_promotion_code": False,
                   "orders_payment_intent_id": True, "orders_checkout_session_id": True},
        "shop_events": {"shop_events_waiting": False},
        "outbox": {"outbox_pending": False},
    }  # fmt: skip

    def partial(self, db: Any, table: str) -> dict[str, bool]:
        """The table's partial indexes: name -> unique."""
        return {
            index.name: index.unique
            for index in db.get_indexes(table)
            if " WHERE " in (index.sql or "").upper()
        }

    def test_replaces_the_full_indexes(self, db: Any) -> None:
        for name in [*self.PARTIAL["orders"], "shop_events_waiting", "outbox_pending"]:
            db.execute_sql(f"DROP INDEX {name}")
        for create in self.OLD:
            db.execute_sql(create)
        db.execute_sql("DELETE FROM schema_migrations WHERE version = '0013'")
        assert apply_migrations(db) == ["0013"]
        for table, expected in self.PARTIAL.items():
            assert {n: u for n, u in self.partial(db, table).items() if n in expected} == expected
        names = {i.name for t in ("shop_events", "outbox") for i in db.get_indexes(t)}
        assert not names & {"shop_events_dispatched", "outbox_status"}
        assert apply_migrations(db) == []

    def test_a_fresh_database_has_them_already(self, db: Any) -> None:
        for table, expected in self.PARTIAL.items():
            assert {n: u for n, u in self.partial(db, table).items() if n in expected} == expected


@pytest.mark.postgres
class TestPartialIndexesMigrationOnPostgres(TestPartialIndexesMigration):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url


class TestUnfinishedIndexesMigration:
    """0014 on a database migrated before it: the reservations and the webhook inbox index
    only their rows still in play, the orders their state with the id, as a fresh
    database's models declare them."""

    OLD = (
        "CREATE INDEX reservation_status ON reservation (status)",
        "CREATE INDEX reservation_expires_at ON reservation (expires_at)",
        "CREATE INDEX webhook_event_status ON webhook_event (status)",
        "CREATE INDEX orders_state ON orders (state)",
    )
    NEW = {
        "reservation": "reservation_held",
        "webhook_event": "webhook_event_unfinished",
        "orders": "orders_state_id",
    }

    def definitions(self, db: Any) -> dict[str, str]:
        """The two tables' indexes: name -> columns and predicate as the database has them."""
        return {
            index.name: f"{index.columns} {(index.sql or '').upper().partition(' WHERE ')[2]}"
            for table in self.NEW
            for index in db.get_indexes(table)
        }

    def test_replaces_the_full_indexes(self, db: Any) -> None:
        fresh = self.definitions(db)
        for name in self.NEW.values():
            db.execute_sql(f"DROP INDEX {name}")
        for create in self.OLD:
            db.execute_sql(create)
        db.execute_sql("DELETE FROM schema_migrations WHERE version = '0014'")
        assert apply_migrations(db) == ["0014"]
        migrated = self.definitions(db)
        assert set(migrated) == set(fresh)
        assert not set(migrated) & {"reservation_status", "reservation_expires_at", "orders_state"}
        if is_postgres(db):  # SQLite keeps each CREATE as written: spelt differently
            assert migrated == fresh
        assert apply_migrations(db) == []

    def test_a_fresh_database_has_them_already(self, db: Any) -> None:
        indexes = self.definitions(db)
        assert indexes["orders_state_id"].split() == ["['state',", "'id']"]
        assert indexes["reservation_held"].startswith("['expires_at', 'order_id']")
        assert "'HELD'" in indexes["reservation_held"]
        unfinished = indexes["webhook_event_unfinished"]
        assert "'RECEIVED'" in unfinished and "'DEAD'" in unfinished
        assert "'PROCESSED'" not in unfinished
        assert not {"reservation_status", "webhook_event_status", "orders_state"} & set(indexes)


@pytest.mark.postgres
class TestUnfinishedIndexesMigrationOnPostgres(TestUnfinishedIndexesMigration):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url
