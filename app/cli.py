"""Flask CLI commands (``flask --app wsgi <command>``): migrate, products (upsert, import),
inventory, seed, webhooks (the shop's verification snippet), stripe-events (the types
Stripe's webhook endpoint enables), operators (the console's accounts, app/console/cli.py)."""

from __future__ import annotations

from pathlib import Path

import click
import peewee
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.console.cli import operators_group
from app.context import current_database, current_runtime
from app.errors import ServiceError
from app.gateways.shop_webhooks import VERIFY_EXAMPLES
from app.runtime import Runtime
from app.services import catalog_import, erasure, promotions
from app.services.catalog import ProductInput, seed_demo, upsert_product
from app.services.inventory import rebuild_from_db
from app.services.webhooks import HANDLED_TYPES
from models.migrate import apply_migrations

# The CSV columns of `flask products import` (tests and docs read them here).
CSV_COLUMNS = catalog_import.CSV_COLUMNS


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


@products_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    default=None,
    help="Default: from the file's extension.",
)
@click.option(
    "--set-stock",
    is_flag=True,
    help="Set existing products' stock from the file's shelf counts (default: keep it).",
)
def import_command(file: Path, fmt: str | None, set_stock: bool) -> None:
    """Import a catalog from JSON or CSV (UTF-8): all rows valid, then one write (else
    nothing).

    JSON: a list of products or ``{"products": [...]}``, each as ``PUT
    /api/admin/products`` takes it. CSV columns: sku, name, description, price (integer
    minor units), currency, stockOnHand, imageUrl, category, brand, active (true/false).
    Every row passes the API's checks (card data, text, schema). Existing products keep
    their stock unless ``--set-stock``: a file's counts are as old as the file.
    """
    fmt = catalog_import.file_format(file.name, fmt)
    try:
        records, errors = catalog_import.read_records(file.read_bytes(), fmt)
    except catalog_import.ImportRefused as exc:
        raise click.ClickException(f"nothing imported: {exc.errors[0]}") from exc
    runtime = _runtime()
    with click.progressbar(records, label=f"Checking {len(records)} rows") as rows:
        items, problems = catalog_import.check_records(rows, runtime.config.store_currency)
    errors += problems
    if errors:
        raise click.ClickException("nothing imported:\n  " + "\n  ".join(errors))
    try:
        with click.progressbar(length=len(items), label="Writing (one transaction)") as bar:
            done = catalog_import.write(runtime.redis, items, set_stock=set_stock)
            bar.update(len(items))
    except ServiceError as exc:
        raise click.ClickException(f"nothing imported: {exc.message}") from exc
    summary = (
        f"imported {done.imported} products: {done.created} created, "
        f"{done.updated} updated, {done.inactive} inactive"
    )
    if done.stock_kept:
        plural = "" if done.stock_kept == 1 else "s"
        summary += (
            f"; stock kept for {done.stock_kept} existing product{plural} (--set-stock sets it)"
        )
    click.echo(summary)


@inventory_group.command("rebuild")
def rebuild_command() -> None:
    """I9: set Redis counters to on hand - held, the prices, and the promotion codes'
    terms and redemptions, from the database."""
    redis = _runtime().redis
    report = rebuild_from_db(redis)
    click.echo(
        f"rebuilt {report.skus} SKUs (Redis-only holds kept: {report.redis_only_holds}, "
        f"reservation records restored: {report.restored}, "
        f"held records settled from the database: {report.settled})"
    )
    codes = promotions.rebuild_from_db(redis)
    click.echo(f"rebuilt {codes} promotion codes' terms and redemptions")


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Upsert the demo catalog (idempotent), its pictures at the app's PUBLIC_URL."""
    runtime = _runtime()
    for product in seed_demo(runtime.redis, image_base=runtime.config.public_url):
        click.echo(f"{product['sku']}: available {product['available']}")


webhooks_group = AppGroup("webhooks", help="Shop webhooks (the shop's own backend).")


@webhooks_group.command("verify-example")
@click.option(
    "--lang",
    type=click.Choice(["all", *VERIFY_EXAMPLES]),
    default="all",
    help="Only this language's snippet.",
)
def verify_example_command(lang: str) -> None:
    """Print the code a shop runs to verify a Checkout-Signature (Python and Node)."""
    headers = {
        "python": '# Python: verify(request.get_data(), request.headers["Checkout-Signature"], '
        "secret)",
        "node": '// Node (express.raw({type: "application/json"})): '
        'verify(req.body, req.get("Checkout-Signature"), secret)',
    }
    chosen = list(VERIFY_EXAMPLES) if lang == "all" else [lang]
    click.echo("\n".join(f"{headers[name]}\n{VERIFY_EXAMPLES[name]}" for name in chosen))


@click.command("stripe-events")
@click.option(
    "--comma", is_flag=True, help="One comma-separated line (for `stripe listen --events`)."
)
def stripe_events_command(comma: bool) -> None:
    """Print the event types Stripe's webhook endpoint must enable (its enabled_events):
    the types a handler acts on; Stripe need not send any other."""
    types = sorted(HANDLED_TYPES)
    click.echo(",".join(types) if comma else "\n".join(types))


buyers_group = AppGroup("buyers", help="Returning buyers (JWT user ids).")


@buyers_group.command("erase")
@click.argument("user_id")
def erase_command(user_id: str) -> None:
    """Right to erasure: delete USER_ID's Stripe Customer and redact their orders' personal
    data (amounts, states and audit types stay). Safe to run again."""
    try:
        done = erasure.erase_buyer(user_id, _runtime())
    except ServiceError as exc:
        raise click.ClickException(f"erasure stopped, run it again: {exc.message}") from exc
    customer = "deleted" if done.customer_deleted else "none recorded"
    click.echo(f"erased: {done.orders} order(s) redacted; Stripe customer {customer}")


def register_commands(app: Flask) -> None:
    """Attach the commands to ``app.cli``."""
    commands = (
        migrate_command,
        products_group,
        inventory_group,
        seed_demo_command,
        webhooks_group,
        stripe_events_command,
        buyers_group,
        operators_group,
    )
    for command in commands:
        app.cli.add_command(command)
