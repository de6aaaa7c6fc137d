"""Flask CLI commands (``flask --app wsgi <command>``): migrate, products (upsert, import),
inventory, seed, webhooks (the shop's verification snippet), operators (the console's
accounts, app/console/cli.py)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import click
import peewee
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError

from app.console.cli import operators_group
from app.context import current_database, current_runtime
from app.errors import ServiceError
from app.gateways.shop_webhooks import VERIFY_EXAMPLES
from app.runtime import Runtime
from app.schemas.card_data import contains_card_data
from app.schemas.common import flatten_errors, unencodable_paths
from app.schemas.products import SyncedProductSchema
from app.services import catalog, erasure, promotions
from app.services.catalog import ProductInput, seed_demo, upsert_product
from app.services.inventory import rebuild_from_db
from models.migrate import apply_migrations

# The CSV columns of `flask products import` (the sync body's fields, flat).
CSV_COLUMNS = (
    "sku", "name", "description", "price", "currency", "stockOnHand",
    "imageUrl", "category", "brand", "active",
)  # fmt: skip
CSV_REQUIRED = ("sku", "name", "price", "currency", "stockOnHand")
CSV_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# ASCII digits only: r"\d" would read Arabic-Indic or full-width digits as numbers.
_WHOLE_NUMBER = re.compile(r"[0-9]+")
# More digits than any limit of the schema allows (prices and stock).
_LONGEST_NUMBER = 18
CARD_DATA_MESSAGE = "card data is never accepted (the value is not shown)."
_row_schema = SyncedProductSchema()


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
    fmt = fmt or ("csv" if file.suffix.lower() == ".csv" else "json")
    raw = _decode(file.read_bytes())
    records, errors = _csv_records(raw) if fmt == "csv" else _json_records(raw)
    runtime = _runtime()
    currency = runtime.config.store_currency
    items: list[ProductInput] = []
    seen: dict[str, str] = {}
    with click.progressbar(records, label=f"Checking {len(records)} rows") as rows:
        for label, record in rows:
            item, problems = _validate(label, record)
            errors += problems
            if item is None:
                continue
            if item.sku in seen:
                errors.append(f"{label}, sku: duplicate of {seen[item.sku]}.")
            if item.currency != currency:
                errors.append(f"{label}, currency: this store sells in {currency.upper()}.")
            seen.setdefault(item.sku, label)
            items.append(item)
    if not errors and not items:
        errors.append("The file has no products.")
    if errors:
        raise click.ClickException("nothing imported:\n  " + "\n  ".join(errors))
    known = catalog.existing_skus([item.sku for item in items])
    try:
        with click.progressbar(length=len(items), label="Writing (one transaction)") as bar:
            catalog.upsert_products(runtime.redis, items, set_stock=set_stock)
            bar.update(len(items))
    except ServiceError as exc:
        raise click.ClickException(f"nothing imported: {exc.message}") from exc
    inactive = sum(1 for item in items if not item.active)
    summary = (
        f"imported {len(items)} products: {len(items) - len(known)} created, "
        f"{len(known)} updated, {inactive} inactive"
    )
    if known and not set_stock:
        plural = "" if len(known) == 1 else "s"
        summary += f"; stock kept for {len(known)} existing product{plural} (--set-stock sets it)"
    click.echo(summary)


def _decode(raw: bytes) -> str:
    """The file as text: UTF-8 (a BOM allowed), else an error naming the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise click.ClickException(
            f"nothing imported: the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at line "
            f"{line}, column {column}); save it as UTF-8."
        ) from exc


def _label_of(index: int, fmt: str) -> str:
    """How a message names the ``index``-th record: CSV rows count the header as line 1."""
    return f"row {index + 1} (line {index + 2})" if fmt == "csv" else f"product {index + 1}"


def _json_records(raw: str) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """``[(label, record)]`` from a JSON list or ``{"products": [...]}``, and errors."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # as the API: NaN, too deep, 4,300+ digits
        return [], [f"not valid JSON: {exc}"]
    if isinstance(data, dict) and set(data) == {"products"}:
        data = data["products"]
    if not isinstance(data, list):
        return [], ['expected a list of products or {"products": [...]}']
    records, errors = [], []
    for index, record in enumerate(data):
        if isinstance(record, dict):
            records.append((_label_of(index, "json"), record))
        else:
            errors.append(f"{_label_of(index, 'json')}: not a JSON object.")
    return records, errors


def _csv_records(raw: str) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """``[(label, record)]`` with typed values from CSV rows, and errors."""
    reader = csv.DictReader(io.StringIO(raw))
    header = [name.strip() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in CSV_COLUMNS]
    missing = [name for name in CSV_REQUIRED if name not in header]
    if unknown or missing:
        problems = [f"header: unknown column {name!r}." for name in unknown]
        problems += [f"header: missing column {name!r}." for name in missing]
        return [], [*problems, f"header: the columns are {', '.join(CSV_COLUMNS)}."]
    reader.fieldnames = header
    records, errors = [], []
    try:
        for index, row in enumerate(reader):
            label = _label_of(index, "csv")
            if None in row:
                errors.append(f"{label}: more cells than columns.")
                continue
            record, problems = _typed_row(label, row)
            errors += problems
            records.append((label, record))
    except csv.Error as exc:  # a cell over the csv module's field limit
        # line_num counts the lines finished; the refused one is the next.
        errors.append(f"line {reader.line_num + 1}: {exc}.")
    return records, errors


def _refuse_constant(name: str) -> Any:
    """JSON has no NaN or Infinity (the API refuses them too); Python's parser accepts them."""
    raise ValueError(f"invalid JSON constant {name}")


def _typed_row(label: str, row: dict[str, str | None]) -> tuple[dict[str, Any], list[str]]:
    """One CSV row as a sync record: integers and booleans parsed, empty cells absent."""
    cells = {k: (v or "").strip() for k, v in row.items()}
    record: dict[str, Any] = {
        k: v for k, v in cells.items() if v and k not in ("price", "currency", "active")
    }
    errors = []
    for name in ("price", "stockOnHand"):
        if cells.get(name) and not _WHOLE_NUMBER.fullmatch(cells[name]):
            errors.append(f"{label}, {name}: must be a whole number (minor units for price).")
        elif cells.get(name):
            record[name] = _whole_number(cells[name])
    if cells.get("price") or cells.get("currency"):
        record["price"] = {"amount": record.pop("price", None), "currency": cells.get("currency")}
        record["price"] = {k: v for k, v in record["price"].items() if v is not None}
    if cells.get("active"):
        if cells["active"].lower() not in CSV_BOOLEANS:
            errors.append(f"{label}, active: must be true or false.")
        else:
            record["active"] = CSV_BOOLEANS[cells["active"].lower()]
    return record, errors


def _whole_number(digits: str) -> int:
    """ASCII digits as an int; a run too long to convert (Python refuses 4,300 digits)
    becomes a number above every limit, so the schema answers its own range message."""
    return int(digits) if len(digits) <= _LONGEST_NUMBER else 10**_LONGEST_NUMBER


def _validate(label: str, record: dict[str, Any]) -> tuple[ProductInput | None, list[str]]:
    """The record checked as the sync endpoint checks a body (card data, text, schema);
    errors name row and field."""
    refused = _refused_fields(record)
    if refused:
        return None, [
            f"{label}, {_csv_field(path)}: {' '.join(texts)}" for path, texts in refused.items()
        ]
    try:
        data = _row_schema.load(record)
    except ValidationError as exc:  # the same messages as the API's
        return None, [
            f"{label}, {_csv_field(path)}: {' '.join(texts)}"
            for path, texts in flatten_errors(exc.messages).items()
        ]
    return catalog.product_input(data["sku"], data), []


def _refused_fields(record: dict[str, Any]) -> dict[str, list[str]]:
    """What the API refuses before its schema: card data (I6; the value never echoed) and
    text no database can store (NUL, lone surrogates), by field."""
    refused = {
        name: [CARD_DATA_MESSAGE]
        for name, value in record.items()
        if contains_card_data({name: value})
    }
    for path, texts in unencodable_paths(record).items():
        refused.setdefault(path, texts)
    return refused


def _csv_field(path: str) -> str:
    """``price.amount`` reads as the CSV's ``price`` column, ``price.currency`` as ``currency``."""
    return {"price.amount": "price", "price.currency": "currency"}.get(path, path)


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
        buyers_group,
        operators_group,
    )
    for command in commands:
        app.cli.add_command(command)
