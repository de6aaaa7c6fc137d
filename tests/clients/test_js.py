"""The browser client (clients/js): its types are generated from the document the app
serves, its unit tests (vitest) and type check (tsc) pass, and it builds.

Like the React example's suite, these need Node: skipped without it, failed under CI=true.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clients import js_package
from tests.clients.js_package import CLIENT, ROOT, SCHEMA


@pytest.fixture(scope="module")
def npm() -> str:
    return js_package.require_node()


class TestTypes:
    def test_the_dump_command_writes_the_served_document(self, client: Any, tmp_path: Path):
        target = tmp_path / "openapi.json"
        subprocess.run([sys.executable, "-m", "app.api", str(target)], cwd=ROOT, check=True)
        served = client.get("/openapi.json").get_json()
        assert json.loads(target.read_text()) == served
        # The same order too: the generated types follow the document's order.
        assert list(json.loads(target.read_text())["paths"]) == list(served["paths"])

    def test_the_checked_in_types_are_the_served_documents(
        self, client: Any, npm: str, tmp_path: Path
    ):
        served = tmp_path / "openapi.json"
        served.write_bytes(client.get("/openapi.json").data)
        generated = tmp_path / "schema.ts"
        js_package.install(npm)
        js_package.run([npm, "run", "types", "--", str(served), "-o", str(generated)])
        assert generated.read_text() == SCHEMA.read_text(), (
            "clients/js/src/schema.ts differs from the served /openapi.json: run `make js-types`"
        )


class TestPackage:
    def test_type_check_passes(self, npm: str):
        js_package.npx(npm, "tsc", "-p", "tsconfig.json", "--noEmit")

    def test_unit_tests_pass(self, npm: str):
        output = js_package.npx(npm, "vitest", "run", "--reporter", "dot")
        assert " passed" in output

    def test_builds_an_es_module_with_its_declarations(self, npm: str):
        dist = js_package.build(npm)
        for entry in ("index", "react"):
            assert (dist / f"{entry}.js").is_file() and (dist / f"{entry}.d.ts").is_file()
        exports = json.loads((CLIENT / "package.json").read_text())["exports"]
        assert exports["./react"]["import"] == "./dist/react.js"
