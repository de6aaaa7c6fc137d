"""Versioned schema migrations and the one command that applies them.

Each ``models/migrations/NNNN_name.py`` defines ``up(db)``. ``apply_migrations`` runs the
ones not yet recorded in ``schema_migrations``, in order, inside one transaction that
first takes a lock (a PostgreSQL advisory lock; SQLite's ``BEGIN IMMEDIATE``), so two
processes starting together (two release phases, a web and a worker) never both apply
one migration. Run it with ``python -m models.migrate`` (the Procfile's ``release``).
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import peewee

from models import ALL_MODELS
from models.db import bind_database, close_database, is_postgres, utcnow

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>\w+)\.py$")
# Any fixed 64-bit number shared by every process of this service.
ADVISORY_LOCK_KEY = 7_242_018_661
TABLE = "schema_migrations"


@dataclass(frozen=True)
class Migration:
    """One migration module: its version, name and ``up`` function."""

    version: str
    name: str
    module: ModuleType

    def up(self, db: peewee.Database) -> None:
        """Apply this migration to ``db``."""
        self.module.up(db)


def discover() -> list[Migration]:
    """Every migration in ``models/migrations``, oldest first."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.py")):
        match = MIGRATION_FILE.match(path.name)
        if match:
            module = importlib.import_module(f"models.migrations.{path.stem}")
            found.append(Migration(match["version"], match["name"], module))
    return found


def applied_versions(db: peewee.Database) -> set[str]:
    """The versions recorded in ``schema_migrations`` (empty before the first run)."""
    if not db.table_exists(TABLE):
        return set()
    return {row[0] for row in db.execute_sql(f"SELECT version FROM {TABLE}").fetchall()}


def apply_migrations(db: peewee.Database) -> list[str]:
    """Apply the pending migrations; return their versions (empty when up to date)."""
    done: list[str] = []
    with db.atomic():
        if is_postgres(db):
            # Serialises concurrent migrators; released when this transaction ends.
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        db.execute_sql(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            "version VARCHAR(16) PRIMARY KEY, name VARCHAR(200) NOT NULL, "
            "applied_at TIMESTAMP NOT NULL)"
        )
        applied = applied_versions(db)
        for migration in discover():
            if migration.version in applied:
                continue
            migration.up(db)
            db.execute_sql(
                f"INSERT INTO {TABLE} (version, name, applied_at) "
                f"VALUES ({db.param}, {db.param}, {db.param})",
                (migration.version, migration.name, utcnow()),
            )
            done.append(migration.version)
    return done


def drop_all(db: peewee.Database) -> None:
    """Drop every table this service created (tests and local resets only)."""
    postgres = is_postgres(db)
    with db.atomic():
        db.drop_tables(list(ALL_MODELS), safe=True, cascade=postgres)
        db.execute_sql(f"DROP TABLE IF EXISTS {TABLE}")


def main(argv: list[str] | None = None) -> int:
    """Bind the configured database and apply pending migrations."""
    # The release command's entry point, the only place models/ reads configuration:
    # imported here so that the models never depend on the app at import time.
    from app.config import load_config

    config = load_config()
    db = bind_database(config.database_url)
    try:
        versions = apply_migrations(db)
    finally:
        close_database()
    if versions:
        print(f"applied migrations: {', '.join(versions)}")
    else:
        print("database schema up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
