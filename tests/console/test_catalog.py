"""app/console/catalog.py: the Catalog page (read for all, change for admins), price /
active, set on hand, stock adjustments with a reason, the CSV/JSON upload."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from app.console import roles
from app.services import catalog_admin
from app.services.inventory import Inventory
from models import Product, StockAdjustment
from tests.console.conftest import csrf_token_of
from tests.fakes import stock

KEY_FIELD = re.compile(r'name="idempotency_key" value="([^"]+)"')
HEADER = "sku,name,description,price,currency,stockOnHand,imageUrl,category,brand,active\n"


def page_text(client: Any, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, answer.status_code
    return str(answer.get_data(as_text=True))


def adjust(client: Any, sku: str = "TEE", **fields: Any) -> Any:
    """Post the Adjust stock dialog as the product page renders it (token and key)."""
    page = page_text(client, f"/admin/catalog/products/{sku}")
    key = KEY_FIELD.search(page)
    assert key, "no adjustment dialog on the page"
    data = {
        "csrf_token": csrf_token_of(client, f"/admin/catalog/products/{sku}"),
        "idempotency_key": key.group(1),
        "direction": "add",
        "units": "3",
        "reason": "received",
    }
    data.update(fields)
    return client.post(f"/admin/catalog/products/{sku}/adjustments", data=data)


def upload(client: Any, content: bytes, filename: str, **fields: Any) -> Any:
    token = csrf_token_of(client, "/admin/catalog/import")
    data = {"csrf_token": token, "file": (io.BytesIO(content), filename), **fields}
    return client.post(
        "/admin/catalog/import",
        data=data,
        content_type="multipart/form-data",
        headers={"HX-Request": "true"},
    )


def test_everyone_reads_and_admins_change(app: Any) -> None:
    """The role table's walk (test_roles.py) checks these against the server's answers."""
    permissions = {
        endpoint: app.view_functions[endpoint].permission
        for endpoint in app.view_functions
        if endpoint.startswith(("console.catalog", "console.product"))
    }
    assert permissions == {
        "console.catalog": roles.READ,
        "console.product": roles.READ,
        "console.product_edit": roles.MANAGE,
        "console.product_on_hand": roles.MANAGE,
        "console.product_adjustment": roles.MANAGE,
        "console.catalog_upload_page": roles.MANAGE,
        "console.catalog_upload": roles.MANAGE,
    }


@pytest.fixture
def tee(runtime: Any) -> Product:
    return stock(runtime.redis, "TEE", on_hand=10, price=2000)


class TestReading:
    def test_every_role_reads_the_numbers_with_held_from_redis(
        self, runtime: Any, signed_in: Callable[..., Any], tee: Product
    ) -> None:
        Inventory(runtime.redis).hold("res-1", [("TEE", 4)], ttl_seconds=900)
        stock(runtime.redis, "MUG", on_hand=3, price=1400)
        for role in ("viewer", "operator", "admin"):
            client = signed_in(role)
            page = page_text(client, "/admin/catalog")
            row = re.search(r">TEE</a></td>(.*?)</tr>", page, re.S)
            assert row, page[:500]
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
            assert [c.strip() for c in cells] == ["Product TEE", "20.00 USD", "Yes", "10", "4", "6"]

    def test_only_an_admin_is_offered_changes(
        self, signed_in: Callable[..., Any], tee: Product
    ) -> None:
        viewer = page_text(signed_in("viewer"), "/admin/catalog/products/TEE")
        assert "Adjust stock" not in viewer.replace("Stock adjustments", "")
        assert "Upload CSV/JSON" not in page_text(signed_in("operator"), "/admin/catalog")
        admin = signed_in("admin")
        page = page_text(admin, "/admin/catalog/products/TEE")
        for button in ("Adjust stock", "Set on hand", "Edit price / active"):
            assert f">{button}</button>" in page
        assert "Upload CSV/JSON" in page_text(admin, "/admin/catalog")

    def test_search_by_sku_or_name_and_keyset_pages(
        self, runtime: Any, signed_in: Callable[..., Any]
    ) -> None:
        for i in range(5):
            stock(runtime.redis, f"P-{i}", on_hand=1)
        Product.update(name="Blue_mug").where(Product.sku == "P-3").execute()
        client = signed_in("viewer")
        assert ">P-3</a>" in page_text(client, "/admin/catalog?q=blue_")
        assert ">P-1</a>" not in page_text(client, "/admin/catalog?q=blue_")
        assert ">P-1</a>" in page_text(client, "/admin/catalog?q=p-1")
        first = catalog_admin.catalog_page(runtime.redis, limit=2)
        second = catalog_admin.catalog_page(runtime.redis, limit=2, cursor=first.next_cursor)
        third = catalog_admin.catalog_page(runtime.redis, limit=2, cursor=second.next_cursor)
        skus = [row["sku"] for page in (first, second, third) for row in page.data]
        assert skus == [f"P-{i}" for i in range(5)]
        assert third.next_cursor is None
        after = page_text(client, f"/admin/catalog?cursor={first.next_cursor}")
        assert ">P-2</a>" in after and ">P-1</a>" not in after and "First products" in after

    def test_an_unknown_product_is_404(self, signed_in: Callable[..., Any]) -> None:
        page_text(signed_in("viewer"), "/admin/catalog/products/NOPE", status=404)


class TestAdjustments:
    def test_an_admin_adjusts_with_a_reason_and_the_history_names_them(
        self, signed_in: Callable[..., Any], tee: Product, runtime: Any
    ) -> None:
        client = signed_in("admin")
        answer = adjust(client, units="5", note="PO 77")
        assert answer.status_code == 303
        assert (
            Product.get_by_id("TEE").stock_on_hand,
            runtime.redis.hget("{shop}:avail", "TEE"),
        ) == (
            15,
            "15",
        )
        page = page_text(client, "/admin/catalog/products/TEE")
        assert "Stock of TEE +5 (received): 15 on hand now." in page
        assert "operator:admin@shop.example" in page and "PO 77" in page

    def test_a_double_submit_adjusts_once(
        self, signed_in: Callable[..., Any], tee: Product
    ) -> None:
        client = signed_in("admin")
        page = page_text(client, "/admin/catalog/products/TEE")
        data = {
            "csrf_token": csrf_token_of(client, "/admin/catalog/products/TEE"),
            "idempotency_key": KEY_FIELD.search(page).group(1),  # type: ignore[union-attr]
            "direction": "remove",
            "units": "2",
            "reason": "damaged",
        }
        for _ in range(2):
            client.post("/admin/catalog/products/TEE/adjustments", data=data)
        assert Product.get_by_id("TEE").stock_on_hand == 8
        assert StockAdjustment.select().count() == 1

    def test_removing_held_units_is_refused_with_a_message(
        self, runtime: Any, signed_in: Callable[..., Any], tee: Product
    ) -> None:
        Inventory(runtime.redis).hold("res-1", [("TEE", 8)], ttl_seconds=900)
        client = signed_in("admin")
        adjust(client, direction="remove", units="3", reason="damaged")
        page = page_text(client, "/admin/catalog/products/TEE")
        assert "Stock not adjusted: TEE cannot drop by 3" in page
        assert Product.get_by_id("TEE").stock_on_hand == 10

    def test_a_missing_reason_is_named(self, signed_in: Callable[..., Any], tee: Product) -> None:
        client = signed_in("admin")
        adjust(client, reason="")
        assert "reason: Missing data for required field." in page_text(
            client, "/admin/catalog/products/TEE"
        )
        assert StockAdjustment.select().count() == 0

    def test_without_the_csrf_token_403(self, signed_in: Callable[..., Any], tee: Product) -> None:
        answer = signed_in("admin").post(
            "/admin/catalog/products/TEE/adjustments",
            data={"idempotency_key": "console-k-0001", "direction": "add", "units": "1",
                  "reason": "received"},
        )  # fmt: skip
        assert answer.status_code == 403
        assert Product.get_by_id("TEE").stock_on_hand == 10

    def test_an_operator_may_not_adjust(self, signed_in: Callable[..., Any], tee: Product) -> None:
        client = signed_in("operator")
        answer = client.post(
            "/admin/catalog/products/TEE/adjustments",
            data={"csrf_token": csrf_token_of(client, "/admin/catalog"), "direction": "add",
                  "units": "1", "reason": "received", "idempotency_key": "console-k-0002"},
        )  # fmt: skip
        assert answer.status_code == 403
        assert Product.get_by_id("TEE").stock_on_hand == 10


class TestEdits:
    def test_price_and_active_keep_the_stock(
        self, runtime: Any, signed_in: Callable[..., Any], paid_order: Any
    ) -> None:
        # paid_order: TEE 5 on hand, 2 sold and not shipped: the row records 3.
        client = signed_in("admin")
        token = csrf_token_of(client, "/admin/catalog/products/TEE")
        answer = client.post(
            "/admin/catalog/products/TEE/edit", data={"csrf_token": token, "price": "19.5"}
        )
        assert answer.status_code == 303
        row = Product.get_by_id("TEE")
        assert (row.price_amount, row.active, row.stock_on_hand) == (1950, False, 3)
        assert runtime.redis.hget("{shop}:avail:inactive", "TEE") == "3"
        assert runtime.redis.hget("{shop}:price", "TEE") == "1950"

    def test_set_on_hand_takes_the_shelf_count(
        self, runtime: Any, signed_in: Callable[..., Any], paid_order: Any
    ) -> None:
        client = signed_in("admin")
        page = page_text(client, "/admin/catalog/products/TEE")
        assert 'name="stock_on_hand" type="number"' in page and 'value="5"' in page  # 3 + 2 sold
        token = csrf_token_of(client, "/admin/catalog/products/TEE")
        client.post(
            "/admin/catalog/products/TEE/on-hand", data={"csrf_token": token, "stock_on_hand": "9"}
        )
        assert Product.get_by_id("TEE").stock_on_hand == 7
        assert runtime.redis.hget("{shop}:avail", "TEE") == "7"

    def test_a_bad_price_is_named(self, signed_in: Callable[..., Any], tee: Product) -> None:
        client = signed_in("admin")
        token = csrf_token_of(client, "/admin/catalog/products/TEE")
        client.post("/admin/catalog/products/TEE/edit", data={"csrf_token": token, "price": "1,5"})
        assert "Not saved:" in page_text(client, "/admin/catalog/products/TEE")
        assert Product.get_by_id("TEE").price_amount == 2000


class TestUpload:
    def test_a_csv_is_imported_with_a_summary(
        self, runtime: Any, signed_in: Callable[..., Any], tee: Product
    ) -> None:
        rows = "".join(f"P-{i},Product {i},,{100 + i},usd,{i},,,,true\n" for i in range(3))
        answer = upload(
            signed_in("admin"), (HEADER + rows + "TEE,Tee,,2000,usd,50,,,,true\n").encode(), "c.csv"
        )
        assert answer.status_code == 200
        text = answer.get_data(as_text=True)
        assert "Imported 4 products" in text
        assert "4 of 4 rows from c.csv: 3 created, 1 updated, 0 inactive." in text
        assert "Stock kept for 1 existing product." in text
        assert runtime.redis.hget("{shop}:avail", "P-2") == "2"
        assert Product.get_by_id("TEE").stock_on_hand == 10

    def test_a_json_file_with_set_stock(
        self, runtime: Any, signed_in: Callable[..., Any], tee: Product
    ) -> None:
        body = [{"sku": "TEE", "name": "Tee", "price": {"amount": 2000, "currency": "usd"},
                 "stockOnHand": 12}]  # fmt: skip
        answer = upload(signed_in("admin"), json.dumps(body).encode(), "c.json", set_stock="on")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert Product.get_by_id("TEE").stock_on_hand == 12

    def test_errors_name_their_rows_and_nothing_is_written(
        self, runtime: Any, signed_in: Callable[..., Any]
    ) -> None:
        rows = "A,Mug,,100,usd,1,,,,true\nB,Cup,,1.5,usd,1,,,,maybe\nA,Dup,,100,usd,1,,,,true\n"
        answer = upload(signed_in("admin"), (HEADER + rows).encode(), "bad.csv")
        assert answer.status_code == 400
        text = answer.get_data(as_text=True)
        assert "Nothing imported" in text
        assert "row 2 (line 3), price: must be a whole number" in text
        assert "row 2 (line 3), active: must be true or false." in text
        assert "row 3 (line 4), sku: duplicate of row 1 (line 2)." in text
        assert Product.select().count() == 0
        assert runtime.redis.hlen("{shop}:avail") == 0

    def test_no_file_and_not_utf8(self, signed_in: Callable[..., Any]) -> None:
        client = signed_in("admin")
        token = csrf_token_of(client, "/admin/catalog/import")
        answer = client.post("/admin/catalog/import", data={"csrf_token": token})
        assert answer.status_code == 400
        assert "Choose a CSV or JSON file" in answer.get_data(as_text=True)
        latin = (HEADER + "A,Café,,100,usd,1,,,,true\n").encode("latin-1")
        assert "not UTF-8" in upload(client, latin, "c.csv").get_data(as_text=True)

    def test_a_file_over_the_apps_body_limit_is_accepted(
        self, runtime: Any, signed_in: Callable[..., Any]
    ) -> None:
        # 1,000 products: well over the app's 64 KB limit, under the upload's 8 MB.
        rows = "".join(f"S-{i:04d},Product {i},{'x' * 60},{100 + i},usd,{i % 50},,,,true\n"
                       for i in range(1000))  # fmt: skip
        assert len(rows) > 64 * 1024
        answer = upload(signed_in("admin"), (HEADER + rows).encode(), "big.csv")
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        assert Product.select().count() == 1000

    def test_more_rows_than_the_limit_are_refused_before_checking(
        self, runtime: Any, signed_in: Callable[..., Any]
    ) -> None:
        rows = "".join(f"S-{i:04d},P,,1,usd,1,,,,true\n" for i in range(1001))
        answer = upload(signed_in("admin"), (HEADER + rows).encode(), "big.csv")
        assert answer.status_code == 400
        assert "the file has 1,001 products; at most 1,000 at a time here" in answer.get_data(
            as_text=True
        )
        assert Product.select().count() == 0

    def test_without_the_csrf_token_403(self, signed_in: Callable[..., Any]) -> None:
        answer = signed_in("admin").post(
            "/admin/catalog/import",
            data={"file": (io.BytesIO(HEADER.encode()), "c.csv")},
            content_type="multipart/form-data",
        )
        assert answer.status_code == 403

    def test_a_viewer_may_not_upload(self, signed_in: Callable[..., Any]) -> None:
        client = signed_in("viewer")
        page_text(client, "/admin/catalog/import", status=403)
