"""A catalog of 1,000 products, synced over HTTP (JSON) and imported with
``flask products import`` (CSV and JSON), with the counters checked in Redis — on
fakeredis and, with REDIS_URL, on the real server. Bad rows: errors naming row and
field, nothing written."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.cli import CSV_COLUMNS

N = 1000


@pytest.fixture(params=["fakeredis", pytest.param("real", marks=pytest.mark.realredis)])
def redis(request: pytest.FixtureRequest) -> Iterator[Any]:
    """This module's runtime on fakeredis, then on the real Redis."""
    if request.param == "real":
        yield request.getfixturevalue("real_redis")
        return
    import fakeredis

    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    yield client
    client.close()


def products(n: int = N) -> list[dict[str, Any]]:
    """``n`` products; every tenth inactive, stock varying with the index."""
    return [
        {
            "sku": f"SKU-{i:04d}",
            "name": f"Product {i}",
            "description": f"Item number {i}.",
            "price": {"amount": 100 + i, "currency": "usd"},
            "stockOnHand": i % 50,
            "imageUrl": f"/images/{i}.jpg",
            "category": f"Cat {i % 7}",
            "brand": "Acme",
            "active": i % 10 != 0,
        }
        for i in range(n)
    ]


def assert_counters(redis: Any, items: list[dict[str, Any]]) -> None:
    from models import Product

    active = redis.hgetall("{shop}:avail")
    parked = redis.hgetall("{shop}:avail:inactive")
    assert active == {p["sku"]: str(p["stockOnHand"]) for p in items if p["active"]}
    assert parked == {p["sku"]: str(p["stockOnHand"]) for p in items if not p["active"]}
    assert Product.select().count() == len(items)
    row = Product.get_by_id("SKU-0123")
    assert (row.price_amount, row.category, row.image_url, row.active) == (
        223, "Cat 4", "/images/123.jpg", True,
    )  # fmt: skip


def write_csv(path: Path, items: list[dict[str, Any]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for p in items:
        writer.writerow([
            p["sku"], p["name"], p["description"], p["price"]["amount"],
            p["price"]["currency"], p["stockOnHand"], p["imageUrl"], p["category"],
            p["brand"], "true" if p["active"] else "false",
        ])  # fmt: skip
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def invoke(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


class TestThousandProducts:
    def test_http_sync(self, client: Any, runtime: Any, admin_headers: Any) -> None:
        items = products()
        body = {"products": items}
        response = client.put("/api/admin/products", json=body, headers=admin_headers)
        assert response.status_code == 200, response.get_json()
        assert response.get_json() == {"upserted": N}
        assert_counters(runtime.redis, items)
        listed = client.get("/api/products?category=cat 4").get_json()
        assert len(listed) == len([p for p in items if p["category"] == "Cat 4" and p["active"]])
        # A second sync with new stock moves every counter by its delta, once.
        for p in items:
            p["stockOnHand"] += 1
        assert (
            client.put("/api/admin/products", json=body, headers=admin_headers).status_code == 200
        )
        assert_counters(runtime.redis, items)

    def test_csv_import(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        items = products()
        result = invoke(app, "products", "import", str(write_csv(tmp_path / "c.csv", items)))
        assert result.exit_code == 0, result.output
        assert "Checking 1000 rows" in result.output
        assert "imported 1000 products: 1000 created, 0 updated, 100 inactive" in result.output
        assert_counters(runtime.redis, items)
        again = invoke(app, "products", "import", str(tmp_path / "c.csv"))
        assert "0 created, 1000 updated" in again.output
        assert_counters(runtime.redis, items)  # idempotent

    def test_json_import(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        items = products()
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps({"products": items}))
        result = invoke(app, "products", "import", str(path))
        assert result.exit_code == 0, result.output
        assert_counters(runtime.redis, items)


class TestBadFiles:
    def test_csv_errors_name_row_and_field_and_nothing_is_written(
        self, app: Any, runtime: Any, tmp_path: Path
    ) -> None:
        from models import Product

        items = products(5)
        path = write_csv(tmp_path / "bad.csv", items)
        lines = path.read_text().splitlines()
        lines[2] = lines[2].replace(",101,usd,", ",1.01,usd,")  # row 2: a decimal price
        lines[4] = lines[4].replace(",true", ",maybe")  # row 4: not a boolean
        lines[5] = lines[5].replace("SKU-0004,Product 4", "SKU-0000,")  # duplicate, no name
        path.write_text("\n".join(lines) + "\n")
        result = invoke(app, "products", "import", str(path))
        assert result.exit_code == 1
        assert "nothing imported" in result.output
        assert "row 2 (line 3), price: must be a whole number" in result.output
        assert "row 4 (line 5), active: must be true or false." in result.output
        assert "row 5 (line 6), name: Missing data for required field." in result.output
        assert Product.select().count() == 0
        assert runtime.redis.hlen("{shop}:avail") == 0

    def test_csv_with_an_unknown_column_is_refused(
        self, app: Any, runtime: Any, tmp_path: Path
    ) -> None:
        path = tmp_path / "extra.csv"
        path.write_text("sku,name,price,currency,stockOnHand,colour\nA,A,1,usd,1,red\n")
        result = invoke(app, "products", "import", str(path))
        assert result.exit_code == 1
        assert "header: unknown column 'colour'" in result.output

    def test_json_errors_use_the_apis_messages(
        self, app: Any, runtime: Any, tmp_path: Path
    ) -> None:
        items = products(3)
        items[1]["image"] = "x.jpg"
        items[2]["price"]["currency"] = "eur"
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(items))
        result = invoke(app, "products", "import", str(path))
        assert result.exit_code == 1
        assert "product 2, image: Unknown field." in result.output
        assert "product 3, currency: this store sells in USD." in result.output


class TestStockIsLeftAlone:
    """A re-import (the example catalog, imported again) leaves stock alone unless asked:
    it must not put back units sold since the file was written."""

    @staticmethod
    def tee_file(tmp_path: Path, on_shelf: int) -> str:
        tee = {**products(1)[0], "sku": "TEE", "stockOnHand": on_shelf, "active": True}
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps({"products": [tee, products(2)[1]]}))
        return str(path)

    def test_existing_stock_is_kept_and_new_products_take_the_file_count(
        self, app: Any, paid_order: Any, tmp_path: Path
    ) -> None:
        from models import Product

        result = invoke(app, "products", "import", self.tee_file(tmp_path, 40))
        assert result.exit_code == 0, result.output
        assert "stock kept for 1 existing product (--set-stock sets it)" in result.output
        assert Product.get_by_id("TEE").stock_on_hand == 3  # 5 - 2 sold: untouched
        assert Product.get_by_id("TEE").price_amount == 100  # the rest is imported
        assert Product.get_by_id("SKU-0001").stock_on_hand == 1

    def test_set_stock_takes_the_shelf_count(
        self, app: Any, paid_order: Any, tmp_path: Path
    ) -> None:
        from models import Product

        path = self.tee_file(tmp_path, 40)
        result = invoke(app, "products", "import", "--set-stock", path)
        assert result.exit_code == 0, result.output
        assert Product.get_by_id("TEE").stock_on_hand == 38  # 40 on the shelf, 2 sold


class TestHostileFiles:
    """Whatever the file holds, the import answers row/field errors (exit 1), writes
    nothing, and never ends in a traceback."""

    HEADER = "sku,name,description,price,currency,stockOnHand\n"

    @staticmethod
    def refused(app: Any, path: Path) -> str:
        from models import Product

        result = invoke(app, "products", "import", str(path))
        assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
        assert result.exit_code == 1
        assert "nothing imported" in result.output
        assert Product.select().count() == 0
        return str(result.output)

    def test_a_card_number_in_a_description(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.csv"
        path.write_text(self.HEADER + "A,A,Paid with 4242 4242 4242 4242,100,usd,1\n")
        output = self.refused(app, path)
        assert "row 1 (line 2), description: card data" in output
        assert "4242" not in output  # never echoed

    def test_a_card_number_in_json(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        item = {**products(1)[0], "brand": "4000056655665556"}
        path = tmp_path / "c.json"
        path.write_text(json.dumps([item]))
        output = self.refused(app, path)
        assert "product 1, brand: card data" in output
        assert "5556" not in output

    def test_a_five_thousand_digit_price(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.csv"
        path.write_text(self.HEADER + f"A,A,,{'9' * 5000},usd,1\n")
        output = self.refused(app, path)
        assert "row 1 (line 2), price: Must be greater than or equal to 0 and less than" in output

    def test_a_five_thousand_digit_price_in_json(
        self, app: Any, runtime: Any, tmp_path: Path
    ) -> None:
        path = tmp_path / "c.json"
        text = json.dumps([{**products(1)[0], "stockOnHand": 0}]).replace(
            '"stockOnHand": 0', '"stockOnHand": ' + "9" * 5000
        )
        path.write_text(text)
        assert "not valid JSON" in self.refused(app, path)

    def test_unicode_digits_are_not_numbers(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.csv"
        arabic_indic = "\u0661\u0660\u0660"  # 100 in Arabic-Indic digits
        full_width = "\uff14\uff10"  # 40 in full-width digits
        path.write_text(self.HEADER + f"A,A,,{arabic_indic},usd,{full_width}\n", encoding="utf-8")
        output = self.refused(app, path)
        assert "row 1 (line 2), price: must be a whole number" in output
        assert "row 1 (line 2), stockOnHand: must be a whole number" in output

    def test_a_latin_1_file(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.csv"
        path.write_bytes((self.HEADER + "A,Café,,100,usd,1\n").encode("latin-1"))
        output = self.refused(app, path)
        assert "not UTF-8" in output
        assert "line 2" in output

    def test_nul_bytes_in_csv(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.csv"
        path.write_bytes((self.HEADER + "A,Mug\x00,,100,usd,1\n").encode())
        assert "row 1 (line 2), name: Must be valid Unicode text" in self.refused(app, path)

    def test_nul_characters_in_json(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.json"
        path.write_text(json.dumps([{**products(1)[0], "category": "Home\u0000"}]))
        assert "product 1, category: Must be valid Unicode text" in self.refused(app, path)

    def test_a_cell_over_the_csv_field_limit(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.csv"
        path.write_text(self.HEADER + f"A,A,{'x' * 200_000},100,usd,1\n")
        assert "line 2: field larger than field limit" in self.refused(app, path)

    def test_json_nested_beyond_any_depth(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.json"
        path.write_text("[" * 100_000 + "]" * 100_000)
        assert "not valid JSON" in self.refused(app, path)

    def test_json_constants_are_not_numbers(self, app: Any, runtime: Any, tmp_path: Path) -> None:
        path = tmp_path / "c.json"
        path.write_text(
            json.dumps([products(1)[0]]).replace('"stockOnHand": 0', '"stockOnHand": NaN')
        )
        assert "not valid JSON" in self.refused(app, path)
