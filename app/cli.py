"""Flask CLI commands (``flask --app wsgi <command>``): migrate, products, inventory, seed."""

from __future__ import annotations

import click
import peewee
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.context import current_database, current_runtime
from app.runtime import Runtime
from app.services.catalog import ProductInput, seed_demo, upsert_product
from app.services.inventory import Inventory, rebuild_counts_from_db
from models.migrate import apply_migrations


def _runtime() -> Runtime:
    return current_runtime()


def _database() -> peewee.Database:
    return current_database()


@click.command("migrate")
@with_appcontext
def migrate_command() -> None:
    """Apply pending database migrations."""
    versions = apply_migrations(_database())
    click.echo(f"applied: {', '.join(versions)}" if versions else "database schema up to date")


products_group = AppGroup("products", help="Manage the catalog.")


@products_group.command("upsert")
@click.argument("sku")
@click.option("--name", required=True)
@click.option("--price", "price", required=True, type=int, help="Minor units, e.g. 2500.")
@click.option("--stock", "stock", required=True, type=click.IntRange(min=0))
@click.option("--description", default="")
@click.option("--currency", default=None, help="Defaults to STORE_CURRENCY.")
def upsert_command(
    sku: str, name: str, price: int, stock: int, description: str, currency: str | None
) -> None:
    """Create or update a product; database and Redis counter together."""
    runtime = _runtime()
    product = upsert_product(
        runtime.redis,
        ProductInput(
            sku=sku,
            name=name,
            description=description,
            price_amount=price,
            currency=(currency or runtime.config.store_currency).lower(),
            stock_on_hand=stock,
        ),
    )
    click.echo(f"{product['sku']}: stock {stock}, available {product['available']}")


inventory_group = AppGroup("inventory", help="Redis stock counters.")


@inventory_group.command("rebuild")
def rebuild_command() -> None:
    """I9: set Redis counters to on hand - held, from the database."""
    counts, held = rebuild_counts_from_db()
    report = Inventory(_runtime().redis).rebuild(counts, held)
    click.echo(f"rebuilt {len(counts)} SKUs: {report}")


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Upsert the demo catalog (idempotent)."""
    for product in seed_demo(_runtime().redis):
        click.echo(f"{product['sku']}: available {product['available']}")


def register_commands(app: Flask) -> None:
    """Attach the commands to ``app.cli``."""
    for command in (migrate_command, products_group, inventory_group, seed_demo_command):
        app.cli.add_command(command)
