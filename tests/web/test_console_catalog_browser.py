"""The console's Catalog in Chromium, on the demo stack: an admin adjusts stock with a
reason and the history names them, an admin uploads a CSV and sees the upload's progress
then the result (and a bad file's row errors), axe on the catalog, product and upload
pages (with the dialog open), nothing sideways at 390 px."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Stack
from tests.web.test_accessibility_browser import serious_violations
from tests.web.test_checkout_browser import screenshot
from tests.web.test_console_browser import create_operator, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
# A product of the demo catalog that the checkout tests do not buy; units are only added.
SKU = "CAP-NAVY"
HEADER = "sku,name,description,price,currency,stockOnHand,imageUrl,category,brand,active\n"
# The status line's texts, in order, as the page sets them (installed before the submit).
RECORD_STATUS = """() => {
  window.uploadStatuses = [];
  const status = document.getElementById("upload-status");
  new MutationObserver(() => window.uploadStatuses.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture
def console(browser: Any, stack: Stack) -> Any:
    """A fresh browser context for an admin (its own cookies)."""
    context = browser.new_context(base_url=stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def on_hand(stack: Stack, sku: str) -> int:
    with sqlite3.connect(stack.database_path) as conn:
        row = conn.execute("SELECT stock_on_hand FROM product WHERE sku = ?", (sku,)).fetchone()
    return int(row[0])


def adjustments(stack: Stack, sku: str) -> list[tuple[int, str, str, str]]:
    with sqlite3.connect(stack.database_path) as conn:
        return conn.execute(
            "SELECT delta, reason, note, actor FROM stock_adjustments WHERE sku = ? ORDER BY id",
            (sku,),
        ).fetchall()


class TestCatalog:
    def test_an_admin_adjusts_stock_with_a_reason_and_the_history_names_them(
        self, stack: Stack, console: Any
    ) -> None:
        email = create_operator(stack, "admin")
        page = console
        sign_in(page, email)
        page.get_by_role("link", name="Catalog").click()
        expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
        assert serious_violations(page) == []
        page.get_by_role("link", name=SKU).click()
        before = on_hand(stack, SKU)
        expect(page.locator("#on-hand")).to_have_text(str(before))
        assert serious_violations(page) == []
        page.get_by_role("button", name="Adjust stock").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Add units").check()
        dialog.get_by_label("Units", exact=True).fill("4")
        dialog.get_by_label("Reason").select_option("received")
        note = f"delivery {uuid.uuid4().hex[:6]}"
        dialog.get_by_label("Note").fill(note)
        assert serious_violations(page) == []  # with the dialog open
        dialog.get_by_role("button", name="Confirm adjustment").click()
        expect(page.get_by_role("status")).to_contain_text(f"Stock of {SKU} +4 (received)")
        expect(page.locator("#on-hand")).to_have_text(str(before + 4))
        history = page.get_by_role("region", name="Stock adjustments")
        expect(history.get_by_role("row").filter(has_text=note)).to_contain_text(
            f"operator:{email}"
        )
        assert (4, "received", note, f"operator:{email}") in adjustments(stack, SKU)
        screenshot(page, "console-catalog")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing sideways
        wider = "() => document.documentElement.scrollWidth > window.innerWidth"
        assert not page.evaluate(wider)
        page.goto("/admin/catalog")
        assert not page.evaluate(wider)

    def test_an_admin_uploads_a_csv_and_sees_progress_then_the_result(
        self, stack: Stack, console: Any
    ) -> None:
        page = console
        sign_in(page, create_operator(stack, "admin"))
        page.goto("/admin/catalog")
        page.get_by_role("link", name="Upload CSV/JSON").click()
        expect(page.get_by_role("heading", name="Upload products")).to_be_visible()
        assert serious_violations(page) == []
        prefix = f"BR{uuid.uuid4().hex[:6].upper()}"
        rows = "".join(
            f"{prefix}-{i:03d},Browser product {i},{'A long description. ' * 10},{500 + i},"
            f"usd,{i % 7},,Browser,,true\n"
            for i in range(300)
        )
        page.get_by_label("Catalog file", exact=True).set_input_files(
            files=[{"name": "catalog.csv", "mimeType": "text/csv",
                    "buffer": (HEADER + rows).encode()}]
        )  # fmt: skip
        page.evaluate(RECORD_STATUS)
        page.get_by_role("button", name="Upload").click()
        result = page.locator("#import-result")
        expect(result.get_by_role("heading", name="Imported 300 products")).to_be_visible()
        expect(result).to_contain_text("300 of 300 rows from catalog.csv: 300 created")
        expect(result).to_be_focused()
        statuses = page.evaluate("() => window.uploadStatuses")
        assert any(text.startswith("Uploading: ") for text in statuses), statuses
        assert statuses[-1] == "Done.", statuses
        assert page.locator("#upload-progress").evaluate("bar => bar.value") == 100
        assert on_hand(stack, f"{prefix}-006") == 6
        assert serious_violations(page) == []

        bad = f"{prefix}-900,Bad,,12.50,usd,1,,,,true\n{prefix}-901,Bad,,100,usd,1,,,,maybe\n"
        page.get_by_label("Catalog file", exact=True).set_input_files(
            files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": (HEADER + bad).encode()}]
        )
        page.get_by_role("button", name="Upload").click()
        expect(result.get_by_role("heading", name="Nothing imported")).to_be_visible()
        expect(result).to_contain_text("row 1 (line 2), price: must be a whole number")
        expect(result).to_contain_text("row 2 (line 3), active: must be true or false.")
        with sqlite3.connect(stack.database_path) as conn:
            written = conn.execute(
                "SELECT count(*) FROM product WHERE sku LIKE ?", (f"{prefix}-9%",)
            ).fetchone()
        assert written == (0,)
