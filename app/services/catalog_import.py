"""Catalog files (CSV or JSON, UTF-8): read, checked row by row as the API checks a
body, then imported in ONE write — ``flask products import`` and the console's upload.

Nothing is half-written: every row is checked first (card data, text, the sync schema,
duplicates, the store's currency) and any error refuses the whole file, each error
naming its row (CSV: ``row 2 (line 3), price: ...``; JSON: ``product 2, ...``). Then
:func:`app.services.catalog.upsert_products` writes all rows in one database
transaction and moves every Redis counter in one Lua script, or nothing at all.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from redis import Redis

from app.errors import InvalidRequest
from app.schemas.card_data import contains_card_data
from app.schemas.common import flatten_errors, unencodable_paths
from app.schemas.products import SyncedProductSchema
from app.services.catalog import ProductInput, existing_skus, product_input, upsert_products

# The CSV columns (the sync body's fields, flat).
CSV_COLUMNS = (
    "sku", "name", "description", "price", "currency", "stockOnHand",
    "imageUrl", "category", "brand", "active",
)  # fmt: skip
CSV_REQUIRED = ("sku", "name", "price", "currency", "stockOnHand")
CSV_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
FORMATS = ("csv", "json")
# ASCII digits only: r"\d" would read Arabic-Indic or full-width digits as numbers.
_WHOLE_NUMBER = re.compile(r"[0-9]+")
# More digits than any limit of the schema allows (prices and stock).
_LONGEST_NUMBER = 18
CARD_DATA_MESSAGE = "card data is never accepted (the value is not shown)."
_row_schema = SyncedProductSchema()

Record = tuple[str, dict[str, Any]]  # (label naming the row, the typed record)


class ImportRefused(InvalidRequest):
    """A catalog file refused as a whole: ``errors`` lists every problem found, each
    naming its row and field; nothing was written."""

    def __init__(self, *errors: str) -> None:
        super().__init__("Nothing imported: " + "; ".join(errors[:3]))
        self.errors = list(errors)


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote: products, how many were new, inactive, and whose stock was
    kept (existing products without ``set_stock``)."""

    imported: int
    created: int
    updated: int
    inactive: int
    stock_kept: int


def file_format(filename: str, declared: str | None = None) -> str:
    """``csv`` or ``json``: as declared, else from the file name (``.csv``; else JSON)."""
    if declared in FORMATS:
        return declared
    return "csv" if filename.lower().endswith(".csv") else "json"


def read_records(raw: bytes, fmt: str) -> tuple[list[Record], list[str]]:
    """The file's records and the errors found reading them (ImportRefused if not UTF-8)."""
    text = decode(raw)
    return csv_records(text) if fmt == "csv" else json_records(text)


def check_records(
    records: Iterable[Record], store_currency: str
) -> tuple[list[ProductInput], list[str]]:
    """Every record checked as the sync endpoint checks a body, plus duplicates and the
    store's currency: the products and the errors (row and field named)."""
    items: list[ProductInput] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    for label, record in records:
        item, problems = validate_record(label, record)
        errors += problems
        if item is None:
            continue
        if item.sku in seen:
            errors.append(f"{label}, sku: duplicate of {seen[item.sku]}.")
        if item.currency != store_currency:
            errors.append(f"{label}, currency: this store sells in {store_currency.upper()}.")
        seen.setdefault(item.sku, label)
        items.append(item)
    if not errors and not items:
        errors.append("The file has no products.")
    return items, errors


def write(redis: Redis, items: Sequence[ProductInput], *, set_stock: bool) -> ImportSummary:
    """Upsert every checked product in one transaction and one script (or nothing)."""
    known = existing_skus([item.sku for item in items])
    upsert_products(redis, items, set_stock=set_stock)
    return ImportSummary(
        imported=len(items),
        created=len(items) - len(known),
        updated=len(known),
        inactive=sum(1 for item in items if not item.active),
        stock_kept=0 if set_stock else len(known),
    )


def import_file(
    redis: Redis,
    raw: bytes,
    fmt: str,
    *,
    store_currency: str,
    set_stock: bool,
    checked: Callable[[int], None] | None = None,
    max_rows: int | None = None,
) -> ImportSummary:
    """Read, check and write a whole file; ImportRefused listing every error (nothing
    written). ``checked(n)`` is told the number of rows once they are all checked; a file
    of more than ``max_rows`` records is refused before any row is checked."""
    records, errors = read_records(raw, fmt)
    if max_rows is not None and len(records) > max_rows:
        raise ImportRefused(
            f"the file has {len(records):,} products; at most {max_rows:,} at a time here "
            "(split the file, or use flask products import)."
        )
    items, problems = check_records(records, store_currency)
    errors += problems
    if errors:
        raise ImportRefused(*errors)
    if checked is not None:
        checked(len(records))
    return write(redis, items, set_stock=set_stock)


def decode(raw: bytes) -> str:
    """The file as text: UTF-8 (a BOM allowed), else ImportRefused naming the first bad
    byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ImportRefused(
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at line "
            f"{line}, column {column}); save it as UTF-8."
        ) from exc


def _label_of(index: int, fmt: str) -> str:
    """How a message names the ``index``-th record: CSV rows count the header as line 1."""
    return f"row {index + 1} (line {index + 2})" if fmt == "csv" else f"product {index + 1}"


def json_records(raw: str) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
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


def csv_records(raw: str) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
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


def validate_record(label: str, record: dict[str, Any]) -> tuple[ProductInput | None, list[str]]:
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
    return product_input(data["sku"], data), []


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
